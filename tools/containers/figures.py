"""The container check's figures, written to their section of docs/benchmarks.md
(`python -m tools.container_check --write-docs`)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from bench.docs import table, write_section

IMAGE_TARGET_GB = 2.5
WHISPER_READY_TARGET_S = 20.0


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def body(report: dict) -> str:
    image = report["cpu_image"]
    size_gb = image["size_bytes"] / 1e9
    size_verdict = "met" if size_gb <= IMAGE_TARGET_GB else "missed"
    lines = [
        "## Containers (`make container-check`)",
        "",
        f"Measured {report['started']} on {_cpu()} ({os.cpu_count()} cores; load average at "
        f"start / end {report['load_at_start']:.2f} / {report['load_at_end']:.2f}), podman "
        "with runc, "
        "by tools/container_check.py: the CPU image built from docker/Dockerfile on a Debian "
        "bookworm base made with mmdebstrap, the pods of "
        "helm/stt-suite/ci/container-check-values.yaml started as rendered (read-only root, "
        "uid 10001, no capabilities), one after another. Start to ready: from the runtime's "
        "start of the container to its first passing startup probe and then readiness probe, "
        "tried every 0.25 s (the kubelet, every periodSeconds, sees it up to a period later). "
        "A restart: the container stopped by SIGTERM and started again in its pod, as the "
        "kubelet restarts one, with the pod's model cache (and numba's compiled functions) kept.",
        "",
        table(
            ["image", "size", "target", "made in s"],
            [
                [
                    "Debian bookworm base (`stt-base:bookworm`, mmdebstrap)",
                    f"{report['base_image']['size_bytes'] / 1e9:.2f} GB",
                    "-",
                    _seconds(report["base_image"].get("seconds"), "(kept)"),
                ],
                [
                    "CPU (`stt-suite:<version>`, on that base)",
                    f"{size_gb:.2f} GB",
                    f"at most {IMAGE_TARGET_GB} GB: {size_verdict}",
                    _seconds(image.get("seconds"), "(not rebuilt)"),
                ],
            ],
        ),
        "",
        table(
            ["pod", "container", "init s", "started s", "ready s", "ready after a restart s"],
            _pod_rows(report),
        ),
        "",
    ]
    whisper = _ready(report, "whisper-en")
    if whisper is not None:
        verdict = "met" if whisper <= WHISPER_READY_TARGET_S else "missed"
        lines += [
            f"whisper_en ready {whisper:.1f} s after its start with the model cached (the init "
            f"container joined it): target {WHISPER_READY_TARGET_S:.0f} s, {verdict}.",
            "",
        ]
    lines += [
        table(
            ["container", "stopped", "preStop s", "SIGTERM to exit s", "grace s", "exit"],
            [
                [
                    r["container"],
                    r.get("when", "-"),
                    str(r.get("pre_stop_s", "-")),
                    str(r.get("after_sigterm_s", "-")),
                    f"{r['grace_s']:.0f}",
                    str(r.get("exit", "-")),
                ]
                for r in report["drain"]
            ],
        ),
        "",
        f"The whole check (images included) took {report['wall_s']:.0f} s. "
        + _cuda(report.get("cuda_image")),
        "",
        "Reading them: the diarization service's first start compiles librosa's numba "
        "functions during its warm-up; they go to the model cache (NUMBA_CACHE_DIR), so a "
        "restarted container loads them instead. whisper_en's start is its imports, the "
        "model's load from the cache and a warm-up inference. The drain is the preStop hook's "
        "wait and then well under a second from SIGTERM to exit, with nothing in flight.",
    ]
    return "\n".join(lines)


def _seconds(value: float | None, otherwise: str) -> str:
    return f"{value:.0f}" if value else otherwise


def _pod_rows(report: dict) -> list[list[str]]:
    rows = []
    for pod, figures in report["pods"].items():
        init = ", ".join(f"{k} {v}" for k, v in figures["init_s"].items()) or "-"
        for name, times in figures.items():
            if name == "init_s":
                continue
            again = report.get("restart", {}).get(pod, {}).get(name, {}).get("ready_s", "-")
            started, ready = times.get("started_s"), times.get("ready_s")
            rows.append([pod, name, init, str(started), str(ready), str(again)])
    return rows


def _ready(report: dict, container: str) -> float | None:
    for figures in report["pods"].values():
        if container in figures:
            return figures[container].get("ready_s")
    return None


def _cuda(cuda: dict | None) -> str:
    if cuda is None:
        return ""
    if cuda["built"]:
        return f"The CUDA image built: {cuda['size_bytes'] / 1e9:.2f} GB."
    first = cuda["stopped_by"].splitlines()[0] if cuda["stopped_by"] else "unknown"
    return f"The CUDA image did not build here: `{first.strip()}`"


def write_docs(report: dict) -> None:
    write_section("containers", body(report))
