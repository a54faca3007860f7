"""Every write a container makes must land on a writable mount: the root is read-only. The
caches that had to be pointed somewhere are named in tools/containers/writes.py, which the
container check (`make container-check`) holds every written file against:

- HOME (/tmp, an emptyDir): onnxruntime writes `~/.ses` and a device id under
  `~/.cache/Microsoft/DeveloperTools` (no variable of its own moves them);
- NUMBA_CACHE_DIR: numba's compiled functions (librosa's, under the diarization service's
  Resemblyzer), on the model cache so that a restarted container reuses them;
- HF_HOME: Hugging Face downloads (the CTC services, pyannote pipelines);
- WHISPER_EN_MODEL_CACHE_DIR: whisper_en's joined bundled model;
- ROUTER_DATA_DIR, WORKER_DATA_DIR: the embedded job store.

Here, in the chart as rendered for every values set, each of those variables names a path
under a writable mount of each container that has it, and each server has the ones it needs.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from tests.chart_support import CI_VALUES, env, of_kind, template, values_args
from tools.containers.writes import CACHE_VARIABLES

VALUE_SETS = ["default", *CI_VALUES]


@pytest.fixture(scope="module")
def containers() -> dict[str, list[tuple[str, dict]]]:
    """(owner, container) of every Deployment and Pod, per values set."""
    found = {}
    for name in VALUE_SETS:
        objects = template(*values_args(name))
        deployments = of_kind(objects, "Deployment").items()
        pods = [(n, d["spec"]["template"]["spec"]) for n, d in deployments]
        pods += [(n, p["spec"]) for n, p in of_kind(objects, "Pod").items()]
        found[name] = [
            (f"{owner}/{c['name']}", c)
            for owner, pod in pods
            for c in pod["containers"] + pod.get("initContainers", [])
        ]
    return found


def writable(container: dict) -> list[PurePosixPath]:
    return [
        PurePosixPath(m["mountPath"])
        for m in container.get("volumeMounts", [])
        if not m.get("readOnly")
    ]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_cache_variable_names_a_writable_mount(containers, values):
    for owner, container in containers[values]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, owner
        variables = env(container)
        assert "HOME" in variables, f"{owner}: HOME is the root's /tmp, which is read-only"
        mounts = writable(container)
        for name in CACHE_VARIABLES:
            if name not in variables:
                continue
            path = PurePosixPath(variables[name])
            assert any(path.is_relative_to(m) for m in mounts), (
                f"{owner}: {name}={path} is on no writable mount ({[str(m) for m in mounts]})"
            )


@pytest.mark.parametrize("values", VALUE_SETS)
def test_the_servers_have_the_caches_they_write(containers, values):
    for owner, container in containers[values]:
        args = container.get("args", [])
        variables = env(container)
        if args[:1] in (["serve"], ["fetch"]):
            assert {"HF_HOME", "NUMBA_CACHE_DIR"} <= set(variables), owner
            cache = PurePosixPath(variables["HF_HOME"]).parent
            # Beside the models: a restart (and, on a claim, a new pod) finds them again.
            assert PurePosixPath(variables["NUMBA_CACHE_DIR"]).parent == cache, owner
        if args[1:2] == ["whisper_en"]:
            assert "WHISPER_EN_MODEL_CACHE_DIR" in variables, owner
