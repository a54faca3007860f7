"""What the figures were measured on."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import ctranslate2
import faster_whisper


def load_average() -> float:
    """The 1-minute load average; taken before the run, it shows whether the machine was busy
    with something else (during the run the benchmark itself keeps the cores busy)."""
    return os.getloadavg()[0]


def describe(load_at_start: float) -> dict[str, str]:
    return {
        "CPU": _cpu_model(),
        "Cores": str(os.cpu_count()),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "faster-whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
        "Load average (1 min), start / end": f"{load_at_start:.2f} / {load_average():.2f}",
        "Date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return platform.processor() or "unknown"
    for line in lines:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
