"""podman, as the container check runs it.

The container check drives podman (it needs pods: containers sharing one network namespace,
as a Kubernetes pod's do). Podman runs here with settings of its own, written into the check's
work folder and named by CONTAINERS_CONF for every call: runc as the runtime and cgroupfs as
the cgroup manager (crun and systemd's cgroups fail on kernels with hybrid cgroups), and no
default ulimits (raising RLIMIT_NOFILE fails inside an unprivileged sandbox).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""


class EngineError(RuntimeError):
    """The engine is missing or cannot run a container here; the message says why."""


class Podman:
    """podman with the check's settings; every call has a timeout."""

    def __init__(self, workdir: Path):
        binary = shutil.which("podman")
        if binary is None:
            raise EngineError("podman is not installed (make container-deps)")
        self.binary = binary
        conf = workdir / "containers.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF, encoding="utf-8")
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(
        self, *args: str, timeout: float = 120, check: bool = True, quiet: bool = True
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [self.binary, *args],
            env=self.env,
            capture_output=quiet,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            detail = (done.stderr or done.stdout or "").strip() if quiet else ""
            raise EngineError(f"podman {' '.join(args[:3])} ... exit {done.returncode}: {detail}")
        return done

    def stream(self, *args: str, log: Path, timeout: float) -> int:
        """A long call (a build) with its output appended to `log` and echoed."""
        with log.open("a", encoding="utf-8") as sink:
            process = subprocess.Popen(
                [self.binary, *args],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            for line in process.stdout:
                sink.write(line)
                if line.startswith(("STEP", "[", "Error", "error")):
                    print(f"  {line.rstrip()[:160]}", file=sys.stderr, flush=True)
            return process.wait(timeout)

    def inspect(self, kind: str, name: str) -> dict:
        found = json.loads(self.run(kind, "inspect", name).stdout)
        return found[0] if isinstance(found, list) else found  # `pod inspect` gives one object

    def exists(self, kind: str, name: str) -> bool:
        return self.run(kind, "exists", name, check=False).returncode == 0

    def preflight(self, image: str) -> None:
        """Fails loudly, with podman's own words, when no container can start here: no user
        namespaces, no overlay storage, a runtime that cannot set up a container."""
        info = self.run("info", "--format", "json", check=False)
        if info.returncode != 0:
            raise EngineError(f"podman info failed: {info.stderr.strip()}")
        done = self.run(
            "run", "--rm", "--read-only", "--user", "10001:10001", image, "true", check=False
        )
        if done.returncode != 0:
            raise EngineError(
                f"podman cannot run a read-only, non-root container here: {done.stderr.strip()}"
            )
