"""The images, built with podman from docker/: the CPU image on the local base, with the
host's pip configuration mounted into the build (tools/containers/pipconf.py), and the CUDA
image as far as it goes without a registry to pull NVIDIA's base from."""

from __future__ import annotations

import re
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tools.containers import pipconf
from tools.containers.base import BASE_IMAGE
from tools.containers.engine import EngineError, Podman

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 2400


def version() -> str:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]["version"]


def cpu_tag() -> str:
    # What the chart renders (`stt-suite:<appVersion>`) resolves to this name in local storage.
    return f"localhost/stt-suite:{version()}"


@dataclass(frozen=True)
class Built:
    tag: str
    seconds: float
    size_bytes: int


def build_cpu(podman: Podman, workdir: Path, log: Path, torch_index_url: str = "") -> Built:
    """docker/Dockerfile on the local base. `torch_index_url` empty: torch comes from the
    indexes the host's pip is configured with, as the host's own environment got it."""
    mounts = pipconf.build_mounts(workdir / "pip", sys.executable)
    args = ["build", "--file", str(REPO / "docker/Dockerfile"), "--tag", cpu_tag()]
    args += ["--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}"]
    args += ["--build-arg", f"TORCH_INDEX_URL={torch_index_url}"]
    for mount in mounts:
        args += ["--volume", mount.volume()]
    started = time.monotonic()
    status = podman.stream(*args, str(REPO), log=log, timeout=BUILD_TIMEOUT_S)
    if status != 0:
        raise EngineError(f"the CPU image build failed (exit {status}); see {log}")
    size = int(podman.inspect("image", cpu_tag())["Size"])
    return Built(cpu_tag(), time.monotonic() - started, size)


def try_cuda(podman: Podman, log: Path) -> dict:
    """docker/Dockerfile.cuda as it is: what stops it, in podman's words, or its size."""
    tag = f"localhost/stt-suite:{version()}-cuda"
    args = ["build", "--file", str(REPO / "docker/Dockerfile.cuda"), "--tag", tag, str(REPO)]
    before = log.stat().st_size if log.exists() else 0
    started = time.monotonic()
    status = podman.stream(*args, log=log, timeout=BUILD_TIMEOUT_S)
    seconds = round(time.monotonic() - started, 1)
    if status == 0:
        size = int(podman.inspect("image", tag)["Size"])
        return {"built": True, "seconds": seconds, "size_bytes": size}
    with log.open(encoding="utf-8") as handle:
        handle.seek(before)
        output = handle.read()
    return {"built": False, "seconds": seconds, "stopped_by": _first_error(output)}


def _first_error(output: str) -> str:
    lines = [line for line in output.splitlines() if re.search(r"error|Error|failed", line)]
    return "\n".join(lines[:6]) or output[-2000:]
