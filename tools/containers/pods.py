"""The planned pods started with podman on one network, as the kubelet would start them:
volumes made empty, with the modes and owners the kubelet gives them, init containers run in
order to completion, then the containers; logs kept for the report."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.containers.engine import EngineError, Podman
from tools.containers.podspec import ContainerPlan, PodPlan, VolumePlan

NETWORK = "stt-container-check"
INIT_TIMEOUT_S = 900


@dataclass
class Started:
    plan: ContainerPlan
    started_at: float  # wall-clock time the runtime started it (State.StartedAt)


@dataclass
class RunningPod:
    plan: PodPlan
    host_ports: dict[int, int]  # container port -> 127.0.0.1 port on this host
    containers: dict[str, Started] = field(default_factory=dict)
    init_seconds: dict[str, float] = field(default_factory=dict)


class Cluster:
    """The pods of one check, on a network of their own, removed again by `teardown`."""

    def __init__(self, podman: Podman, logs: Path):
        self.podman = podman
        self.logs = logs
        self.pods: dict[str, RunningPod] = {}
        self._volumes: set[Path] = set()
        logs.mkdir(parents=True, exist_ok=True)

    def network(self, count: int) -> list[str]:
        """A fresh bridge network with no DNS of its own (only the rendered Service names,
        as host entries, resolve); `count` addresses in it for the pods."""
        if self.podman.exists("network", NETWORK):
            self.podman.run("network", "rm", "--force", NETWORK, timeout=120)
        self.podman.run("network", "create", "--disable-dns", NETWORK)
        subnet = self.podman.inspect("network", NETWORK)["subnets"][0]["subnet"]
        hosts = ipaddress.ip_network(subnet).hosts()
        return [str(address) for _, address in zip(range(count + 10), hosts, strict=False)][10:]

    def start(self, plan: PodPlan) -> RunningPod:
        for volume in plan.volumes:
            self._make_volume(volume)
        self.podman.run("pod", "create", *plan.create_args, timeout=120)
        ports = self._host_ports(plan.name)
        pod = RunningPod(plan, ports)
        self.pods[plan.name] = pod
        for init in plan.init_containers:
            pod.init_seconds[init.name] = self._run_init(init)
        for container in plan.containers:
            self.podman.run("create", *container.args, timeout=120)
        for container in plan.containers:
            self.podman.run("start", container.podman_name, timeout=120)
            pod.containers[container.name] = Started(container, self.started_at(container))
        return pod

    def restart(self, pod: RunningPod, name: str) -> Started:
        """A stopped container started again in its pod, as the kubelet restarts one: the
        pod's volumes (its model cache) are kept, its init containers do not run again."""
        plan = pod.containers[name].plan
        self.podman.run("start", plan.podman_name, timeout=120)
        pod.containers[name] = Started(plan, self.started_at(plan))
        return pod.containers[name]

    def _make_volume(self, volume: VolumePlan) -> None:
        folder = Path(volume.source)
        if folder in self._volumes:
            return  # a claim two pods (or two containers) share is made once
        if folder.exists():
            shutil.rmtree(folder)  # a run starts from empty volumes, as a new release does
        folder.mkdir(parents=True)
        self._volumes.add(folder)
        if volume.kind in ("configMap", "secret"):
            folder.chmod(0o755)
            for name, text in volume.files.items():
                path = folder / name
                path.write_text(text, encoding="utf-8")
                path.chmod(volume.mode)
                if volume.gid is not None:
                    os.chown(path, 0, volume.gid)
            return
        if volume.gid is not None:
            os.chown(folder, 0, volume.gid)
        folder.chmod(volume.mode)

    def _host_ports(self, pod: str) -> dict[int, int]:
        bindings = self.podman.inspect("pod", pod)["InfraConfig"]["PortBindings"] or {}
        return {
            int(key.split("/")[0]): int(value[0]["HostPort"]) for key, value in bindings.items()
        }

    def _run_init(self, init: ContainerPlan) -> float:
        """An init container to its end: exit 0 or the check stops with its log."""
        self.podman.run("create", *init.args, timeout=120)
        started = time.monotonic()
        self.podman.run("start", "--attach", init.podman_name, timeout=INIT_TIMEOUT_S, check=False)
        seconds = time.monotonic() - started
        code = self.exit_code(init.podman_name)
        log = self.save_log(init.podman_name)
        if code != 0:
            raise EngineError(f"init container {init.podman_name} exited {code}:\n{log[-3000:]}")
        return seconds

    def state(self, name: str) -> dict:
        return self.podman.inspect("container", name)["State"]

    def exit_code(self, name: str) -> int:
        return int(self.state(name)["ExitCode"])

    def running(self, name: str) -> bool:
        return bool(self.state(name)["Running"])

    def started_at(self, container: ContainerPlan) -> float:
        return _timestamp(self.state(container.podman_name)["StartedAt"])

    def save_log(self, name: str) -> str:
        done = self.podman.run("logs", name, check=False, timeout=60)
        text = done.stdout + done.stderr
        (self.logs / f"{name}.log").write_text(text, encoding="utf-8")
        return text

    def teardown(self) -> None:
        for name in self.pods:
            self.podman.run("pod", "rm", "--force", "--time", "0", name, check=False, timeout=120)
        for folder in self._volumes:
            shutil.rmtree(folder, ignore_errors=True)
        self.podman.run("network", "rm", "--force", NETWORK, check=False, timeout=120)


def _timestamp(text: str) -> float:
    """podman's RFC 3339 time (nanoseconds, a zone) as a POSIX time."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        raise EngineError(f"cannot read the time {text!r}")
    whole, fraction, zone = match.groups()
    moment = datetime.datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    return moment.timestamp() + float(fraction or 0)
