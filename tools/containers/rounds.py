"""What the container check does once the pods are up: the clients' calls through the
router, the model servers' restart in their pods, the probes' verdicts and the volumes'
contents."""

from __future__ import annotations

import json
import sys
import time

from services import client as service_client
from tools.containers import audio, clients, probes, writes
from tools.containers.engine import EngineError
from tools.containers.pods import Cluster, RunningPod
from tools.containers.podspec import PodPlan


def step(what: str) -> None:
    print(f"container check: {what}", file=sys.stderr, flush=True)


def calls(cluster: Cluster, tests: list[PodPlan]) -> list[dict]:
    router = router_pod(cluster)
    grpc_port = router.host_ports[router.containers["router"].plan.ports["grpc"]]
    http_port = router.host_ports[router.containers["router"].plan.ports["http"]]
    results = []
    for plan in tests:
        step(f"helm test {plan.name}")
        results.append(clients.helm_test(cluster, plan))
    clips = [audio.spoken()] + [c for c in [audio.jfk()] if c is not None]
    for clip in clips:
        step(f"Recognize and OpenAI API: {clip.name}")
        results.append(clients.recognize(grpc_port, clip))
        results.append(clients.openai_transcription(http_port, clip))
    step("LongRunningRecognize with speakers")
    results.append(clients.long_running(grpc_port, audio.conversation(), speakers=2))
    for result in results:
        print(f"  {json.dumps(result)[:200]}", file=sys.stderr, flush=True)
    return results


def restart(cluster: Cluster, kubelet: probes.Kubelet, pod: RunningPod) -> dict:
    figures = {}
    for name in list(pod.containers):
        started = cluster.restart(pod, name)
        figures[name] = probes.wait_ready(started, pod, cluster)
        kubelet.watch(started, pod)
        print(f"  {name} again: {figures[name]}", file=sys.stderr, flush=True)
    return figures


def after_restart(cluster: Cluster) -> dict:
    """Recognize once the router's whole-server health is SERVING again: it found the
    restarted backends by their Service names, and their answer is a fresh inference (a
    restart empties the result cache)."""
    router = router_pod(cluster)
    port = router.host_ports[router.containers["router"].plan.ports["grpc"]]
    deadline = time.monotonic() + 60
    while True:
        try:
            service_client.check(f"127.0.0.1:{port}", "", timeout=5)
            break
        except service_client.RecognizeError as error:
            if time.monotonic() > deadline:
                raise EngineError(
                    f"the router did not serve again after restarts: {error}"
                ) from None
            time.sleep(0.5)
    return {**clients.recognize(port, audio.spoken()), "after": "restart"}


def probed(kubelet: probes.Kubelet, report: dict) -> list[str]:
    """Stops the probes; what would have taken a pod out of service or restarted it."""
    problems = kubelet.stop()
    report.setdefault("probes", {}).update(
        {f"{n} {k}": vars(t) for (n, k), t in kubelet.tallies.items()}
    )
    report.setdefault("probe_problems", []).extend(problems)
    return problems


def written(cluster: Cluster, report: dict) -> list[str]:
    for started in [c for p in cluster.pods.values() for c in p.containers.values()]:
        cluster.save_log(started.plan.podman_name)
    report["writes"] = writes.written(cluster)
    report["refused_writes"] = writes.refused_writes(cluster.logs)
    unnamed = [f for pod in report["writes"].values() for f in pod["unnamed"]]
    problems = [f"a write met the read-only root: {line}" for line in report["refused_writes"]]
    return problems + [
        f"{f} was written, and no cache in tools/containers/writes.py says why" for f in unnamed
    ]


def router_pod(cluster: Cluster) -> RunningPod:
    return next(p for p in cluster.pods.values() if "router" in p.containers)
