"""Where the services wrote. The root is read-only, so every write goes to a mounted volume
or fails; this names every cache a library keeps and the variable the chart points it with,
and after a run finds what the volumes hold that none of them explains (a library's cache
under HOME that nobody set), and any log line of a write the read-only root refused."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from tools.containers.pods import Cluster

# The variables that send a write somewhere: each must name a path on a writable mount of
# every container that has it (tests/test_chart_caches.py checks the rendered chart).
CACHE_VARIABLES = {
    "HOME": "what libraries keep under ~ (below)",
    "HF_HOME": "Hugging Face hub downloads (the CTC services, pyannote pipelines)",
    "NUMBA_CACHE_DIR": "numba's compiled functions (librosa's, under Resemblyzer)",
    "WHISPER_EN_MODEL_CACHE_DIR": "whisper_en's joined bundled model and hub downloads",
    "ROUTER_DATA_DIR": "the embedded job store's SQLite file and uploaded audio (router)",
    "WORKER_DATA_DIR": "the embedded job store (the worker beside the router)",
}
# What is written under HOME with no variable of its own to move it.
UNDER_HOME = {
    ".ses": "onnxruntime's session file",
    ".cache/Microsoft/DeveloperTools/.onnxruntime": "onnxruntime's device id",
}
# How a write to the read-only root shows in a log: the OS error, by number or by words.
READ_ONLY = re.compile(r"Read-only file system|\[Errno 30\]|EROFS")


def refused_writes(logs: Path) -> list[str]:
    """Log lines, by container, that tell of a write the read-only root refused."""
    found = []
    for log in sorted(logs.glob("*.log")):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if READ_ONLY.search(line):
                found.append(f"{log.stem}: {line.strip()[:300]}")
    return found


def allowed_roots(env: dict[str, str]) -> list[PurePosixPath]:
    roots = [PurePosixPath(env[name]) for name in CACHE_VARIABLES if name in env and name != "HOME"]
    if "HOME" in env:
        roots += [PurePosixPath(env["HOME"]) / path for path in UNDER_HOME]
    return roots


def written(cluster: Cluster) -> dict[str, dict[str, list[str]]]:
    """pod -> container path of each file written -> its size, for the report; and in
    `unnamed`, the files no cache variable of the pod's containers explains."""
    report: dict[str, dict[str, list[str]]] = {}
    for pod in cluster.pods.values():
        volumes = {v.name: v for v in pod.plan.volumes if v.kind not in ("configMap", "secret")}
        containers = [*pod.plan.init_containers, *pod.plan.containers]
        allowed = [root for c in containers for root in allowed_roots(c.env)]
        files: list[str] = []
        unnamed: list[str] = []
        seen: set[str] = set()
        for container in containers:
            for mount in container.spec.get("volumeMounts", []):
                volume = volumes.get(mount["name"])
                if volume is None or mount["mountPath"] in seen:
                    continue
                seen.add(mount["mountPath"])
                for path in sorted(Path(volume.source).rglob("*")):
                    if not path.is_file():
                        continue
                    inside = PurePosixPath(mount["mountPath"]) / path.relative_to(volume.source)
                    files.append(f"{inside} ({path.stat().st_size} bytes)")
                    if not any(inside.is_relative_to(root) for root in allowed):
                        unnamed.append(str(inside))
        report[pod.plan.name] = {"files": files, "unnamed": unnamed}
    return report


def summary(files: list[str], depth: int = 3) -> list[str]:
    """The folders files were written to, `depth` levels down (for the docs)."""
    folders = {
        str(PurePosixPath(*PurePosixPath(f.split(" (")[0]).parts[: depth + 1])) for f in files
    }
    return sorted(folders)
