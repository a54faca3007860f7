"""The rendered probes, run as the kubelet runs them, against the ports each pod publishes on
127.0.0.1: gRPC health, HTTP GET, TCP connect or a command in the container.

The startup probe is tried every quarter second (not every periodSeconds) so that the time
to ready is measured, not rounded up to a period, within the rendered deadline of
initialDelaySeconds + failureThreshold x periodSeconds. Once started, readiness and liveness
run at their own periods until the check ends, and count failures in a row: at
failureThreshold a readiness probe takes the pod out of its Services and a liveness probe
restarts the container, and either fails the check.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tools.containers.engine import EngineError
from tools.containers.pods import Cluster, RunningPod, Started

POLL_S = 0.25
READY_WITHIN_S = 60.0


def attempt(probe: dict, started: Started, pod: RunningPod, cluster: Cluster) -> str | None:
    """One try of a probe: None when it passes, else why it failed."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "grpc" in probe:
            return _grpc(probe["grpc"], pod, timeout)
        if "httpGet" in probe:
            return _http(probe["httpGet"], started, pod, timeout)
        if "tcpSocket" in probe:
            port = _host_port(probe["tcpSocket"]["port"], started, pod)
            with socket.create_connection(("127.0.0.1", port), timeout=timeout):
                return None
        if "exec" in probe:
            command = probe["exec"]["command"]
            done = cluster.podman.run(
                "exec", started.plan.podman_name, *command, check=False, timeout=timeout
            )
            return None if done.returncode == 0 else f"exit {done.returncode}"
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{type(error).__name__}: {error}"
    raise EngineError(f"probe {sorted(probe)} is not something this check runs")


def _host_port(port, started: Started, pod: RunningPod) -> int:
    number = started.plan.ports[port] if isinstance(port, str) else int(port)
    return pod.host_ports[number]


def _grpc(spec: dict, pod: RunningPod, timeout: float) -> str | None:
    target = f"127.0.0.1:{pod.host_ports[int(spec['port'])]}"
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=spec.get("service", "")), timeout=timeout
            )
        except grpc.RpcError as error:
            return f"{error.code().name}: {error.details()}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return None


def _http(spec: dict, started: Started, pod: RunningPod, timeout: float) -> str | None:
    if spec.get("scheme", "HTTP") != "HTTP":
        raise EngineError(f"httpGet scheme {spec['scheme']} is not something this check runs")
    port = _host_port(spec["port"], started, pod)
    url = f"http://127.0.0.1:{port}{spec.get('path', '/')}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return None if 200 <= reply.status < 400 else f"HTTP {reply.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"


def wait_ready(started: Started, pod: RunningPod, cluster: Cluster) -> dict:
    """Seconds from the container's start to its startup probe's first pass and then to its
    readiness probe's; the check stops when the rendered deadline passes first (for the
    readiness probe, READY_WITHIN_S after the start-up)."""
    spec = started.plan.spec
    figures = {}
    startup = spec.get("startupProbe")
    if startup is not None:
        deadline = float(startup.get("initialDelaySeconds", 0)) + float(
            startup.get("failureThreshold", 3)
        ) * float(startup.get("periodSeconds", 10))
        figures["started_s"] = _first_pass(startup, started, pod, cluster, deadline, "startup")
    readiness = spec.get("readinessProbe")
    if readiness is not None:
        within = figures.get("started_s", 0.0) + READY_WITHIN_S
        figures["ready_s"] = _first_pass(readiness, started, pod, cluster, within, "readiness")
    return figures


def _first_pass(probe, started, pod, cluster, within_s: float, kind: str) -> float:
    """Seconds from the start to the probe's first pass, tried until `within_s` after it."""
    last = "not tried"
    while time.time() - started.started_at < within_s:
        if not cluster.running(started.plan.podman_name):
            log = cluster.save_log(started.plan.podman_name)
            raise EngineError(f"{started.plan.podman_name} exited before {kind}:\n{log[-3000:]}")
        last = attempt(probe, started, pod, cluster)
        if last is None:
            return round(time.time() - started.started_at, 2)
        time.sleep(POLL_S)
    raise EngineError(
        f"{started.plan.podman_name}: the {kind} probe did not pass within {within_s:.0f} s "
        f"of the start (last: {last})"
    )


@dataclass
class Tally:
    threshold: int  # failures in a row that count (the probe's failureThreshold)
    tries: int = 0
    failures: int = 0
    worst_run: int = 0  # most failures in a row
    last_failure: str = ""
    run: int = 0  # failures in a row now

    def add(self, failure: str | None) -> None:
        self.tries += 1
        if failure is None:
            self.run = 0
            return
        self.failures += 1
        self.run += 1
        self.worst_run = max(self.worst_run, self.run)
        self.last_failure = failure


class Kubelet:
    """Readiness and liveness probes of started containers, each at its own period, in
    background threads, until `stop`."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.tallies: dict[tuple[str, str], Tally] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def watch(self, started: Started, pod: RunningPod) -> None:
        for kind in ("readinessProbe", "livenessProbe"):
            probe = started.plan.spec.get(kind)
            if probe is None:
                continue
            tally = Tally(int(probe.get("failureThreshold", 3)))
            self.tallies[(started.plan.podman_name, kind)] = tally
            thread = threading.Thread(
                target=self._loop, args=(probe, started, pod, tally), daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _loop(self, probe: dict, started: Started, pod: RunningPod, tally: Tally) -> None:
        period = float(probe.get("periodSeconds", 10))
        while not self._stop.wait(period):
            tally.add(attempt(probe, started, pod, self.cluster))

    def stop(self) -> list[str]:
        """Stops probing; what would have taken a pod out of service or restarted one."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return [
            f"{name} {kind}: {tally.worst_run} failures in a row ({tally.last_failure})"
            for (name, kind), tally in self.tallies.items()
            if tally.worst_run >= tally.threshold
        ]
