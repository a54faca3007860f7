"""The base image the check builds on, made here: no image registry need be reachable.

mmdebstrap makes a minimal Debian bookworm with python3 and its venv module (which brings
pip's wheel) from Debian's package archive, and `podman import` turns it into an image: the
same part the official python image plays in docker/Dockerfile (`--build-arg
PYTHON_IMAGE=...`). Manuals and translations are left out; copyright files are kept.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tools.containers.engine import EngineError, Podman

BASE_IMAGE = "localhost/stt-base:bookworm"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
EXCLUDED = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
)


def mmdebstrap_command(tarball: Path) -> list[str]:
    command = ["mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    command += [f"--dpkgopt={option}" for option in EXCLUDED]
    return [*command, SUITE, str(tarball)]


def ensure_base(podman: Podman, workdir: Path, log: Path, rebuild: bool = False) -> float:
    """Makes the base image unless it is there; returns the seconds it took (0 when kept)."""
    if podman.exists("image", BASE_IMAGE) and not rebuild:
        return 0.0
    if shutil.which("mmdebstrap") is None:
        raise EngineError("mmdebstrap is not installed (make container-deps)")
    started = time.monotonic()
    tarball = workdir / "base.tar"
    with log.open("a", encoding="utf-8") as sink:
        done = subprocess.run(
            mmdebstrap_command(tarball), stdout=sink, stderr=subprocess.STDOUT, timeout=900
        )
    if done.returncode != 0:
        raise EngineError(f"mmdebstrap failed (exit {done.returncode}); see {log}")
    podman.run("import", "--change", 'CMD ["python3"]', str(tarball), BASE_IMAGE, timeout=300)
    tarball.unlink()
    return time.monotonic() - started
