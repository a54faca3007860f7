"""`make container-check`: the suite run as the cluster runs it, in containers.

Makes the local base image, builds the CPU image from docker/Dockerfile (and tries the CUDA
one), renders the chart with helm/stt-suite/ci/container-check-values.yaml, starts the
rendered pods of the embedded set (whisper_en, diarization, the router with the job worker
beside it) with podman, each container as rendered, on one network where the rendered
Service names resolve; runs the rendered probes, then the clients' calls through the
router's container, then stops every pod as the kubelet would. Writes a JSON report into
the work folder and exits 1 on the first thing that is not as it should be.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from services import client as service_client
from tools.containers import audio, base, build, clients, drain, probes, render, writes
from tools.containers.engine import EngineError, Podman
from tools.containers.pods import NETWORK, Cluster
from tools.containers.podspec import PodPlan, plan_pod

WORKDIR = Path("/var/tmp/stt-container-check")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if os.geteuid() != 0:
        # Rootful podman: the volumes get the owners and modes the kubelet gives them.
        print("container check: run it as root (as CI does)", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_at_start": os.getloadavg()[0],  # whether the machine was busy with other work
    }
    began = time.monotonic()
    podman = Podman(args.workdir)
    cluster = Cluster(podman, args.workdir / "logs")
    try:
        status = _check(podman, cluster, args, report)
    finally:
        if not args.keep:
            cluster.teardown()
        report["wall_s"] = round(time.monotonic() - began, 1)
        report["load_at_end"] = os.getloadavg()[0]
        path = args.workdir / "report.json"
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"container check: report in {path} ({report['wall_s']} s)", file=sys.stderr)
    if status == 0 and args.write_docs:
        from tools.containers.figures import write_docs

        write_docs(report)
    return status


def _check(podman: Podman, cluster: Cluster, args, report: dict) -> int:
    try:
        _images(podman, args, report)
        _run(cluster, args, report)
        return 0
    except (EngineError, clients.CheckFailed, render.RenderError, ValueError) as error:
        report["failure"] = str(error)
    except Exception:
        report["failure"] = traceback.format_exc()
    print(f"container check: FAILED: {report['failure']}", file=sys.stderr)
    _dump_logs(cluster)
    return 1


def _dump_logs(cluster: Cluster, lines: int = 15) -> None:
    """The end of every container's log, for a CI log that keeps nothing else."""
    for pod in cluster.pods.values():
        for started in pod.containers.values():
            name = started.plan.podman_name
            try:
                text = cluster.save_log(name)
            except (EngineError, OSError) as error:
                text = f"(no log: {error})"
            tail = "\n".join(text.splitlines()[-lines:])
            print(f"--- {name} (last {lines} lines)\n{tail}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="container_check", description=__doc__)
    parser.add_argument("--workdir", type=Path, default=WORKDIR, help="logs, report, scratch")
    parser.add_argument("--values", type=Path, default=render.CHECK_VALUES, help="values set")
    parser.add_argument("--no-build", action="store_true", help="use the images already built")
    parser.add_argument("--rebuild-base", action="store_true", help="make the base image anew")
    parser.add_argument("--no-cuda", action="store_true", help="do not try the CUDA image")
    parser.add_argument("--keep", action="store_true", help="leave the pods running at the end")
    parser.add_argument(
        "--write-docs", action="store_true", help="write the figures to docs/benchmarks.md"
    )
    return parser


def _images(podman: Podman, args, report: dict) -> None:
    log = args.workdir / "build.log"
    log.write_text("", encoding="utf-8")
    _step("base image")
    seconds = round(base.ensure_base(podman, args.workdir, log), 1)
    size = int(podman.inspect("image", base.BASE_IMAGE)["Size"])
    report["base_image"] = {"tag": base.BASE_IMAGE, "seconds": seconds, "size_bytes": size}
    podman.preflight(base.BASE_IMAGE)
    if args.no_build and podman.exists("image", build.cpu_tag()):
        size = int(podman.inspect("image", build.cpu_tag())["Size"])
        report["cpu_image"] = {"tag": build.cpu_tag(), "size_bytes": size, "built": False}
    else:
        _step("CPU image (docker/Dockerfile)")
        built = build.build_cpu(podman, args.workdir, log)
        report["cpu_image"] = {
            "tag": built.tag,
            "size_bytes": built.size_bytes,
            "seconds": round(built.seconds, 1),
        }
    if not args.no_cuda:
        _step("CUDA image (docker/Dockerfile.cuda)")
        report["cuda_image"] = build.try_cuda(podman, log)


def _run(cluster: Cluster, args, report: dict) -> None:
    rendered = render.render(args.values)
    pods, tests = rendered.workloads(), rendered.test_pods()
    names = [p.name for p in [*pods, *tests]]
    ips = dict(zip(names, cluster.network(len(names)), strict=True))
    hosts = rendered.hosts(ips)
    volumes = args.workdir / "volumes"
    plans = [plan_pod(p, rendered, NETWORK, ips[p.name], hosts, volumes) for p in pods]
    kubelet = probes.Kubelet(cluster)
    report["pods"] = {}
    for plan in _startup_order(plans):
        _step(f"pod {plan.name}")
        report["pods"][plan.name] = _start(cluster, kubelet, plan)
    tested = [plan_pod(p, rendered, NETWORK, ips[p.name], hosts, volumes) for p in tests]
    report["clients"] = _clients(cluster, tested)
    problems = _probed(kubelet, report)
    servers = [cluster.pods[p.name] for p in plans if _serves_model(p)]
    _step("SIGTERM to the model servers, then a restart in the same pod")
    report["drain"] = [
        {**r, "when": "before a restart"} for pod in servers for r in drain.stop_pod(cluster, pod)
    ]
    kubelet = probes.Kubelet(cluster)  # a restarted container's probes start afresh
    report["restart"] = {pod.plan.name: _restart(cluster, kubelet, pod) for pod in servers}
    report["clients"].append(_after_restart(cluster))
    problems += _probed(kubelet, report)
    _step("SIGTERM to every pod")
    served = [cluster.pods[plan.name] for plan in plans]  # the test pods have ended
    report["drain"] += [
        {**r, "when": "at the end"} for pod in served for r in drain.stop_pod(cluster, pod)
    ]
    problems += _written(cluster, report)
    problems += [f"{r['container']}: {r['why']}" for r in report["drain"] if not r["ok"]]
    if problems:
        raise EngineError("; ".join(problems))


def _serves_model(plan: PodPlan) -> bool:
    return plan.containers[0].spec.get("args", [""])[0] == "serve"


def _probed(kubelet: probes.Kubelet, report: dict) -> list[str]:
    """Stops the probes; what would have taken a pod out of service or restarted it."""
    problems = kubelet.stop()
    report.setdefault("probes", {}).update(
        {f"{n} {k}": vars(t) for (n, k), t in kubelet.tallies.items()}
    )
    report.setdefault("probe_problems", []).extend(problems)
    return problems


def _restart(cluster: Cluster, kubelet: probes.Kubelet, pod) -> dict:
    figures = {}
    for name in list(pod.containers):
        started = cluster.restart(pod, name)
        figures[name] = probes.wait_ready(started, pod, cluster)
        kubelet.watch(started, pod)
        print(f"  {name} again: {figures[name]}", file=sys.stderr, flush=True)
    return figures


def _after_restart(cluster: Cluster) -> dict:
    """Recognize once the router's whole-server health is SERVING again: it found the
    restarted backends by their Service names, and their answer is a fresh inference (a
    restart empties the result cache)."""
    router = _router(cluster)
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


def _router(cluster: Cluster):
    return next(p for p in cluster.pods.values() if "router" in p.containers)


def _written(cluster: Cluster, report: dict) -> list[str]:
    for started in [c for p in cluster.pods.values() for c in p.containers.values()]:
        cluster.save_log(started.plan.podman_name)
    report["writes"] = writes.written(cluster)
    report["refused_writes"] = writes.refused_writes(cluster.logs)
    unnamed = [f for pod in report["writes"].values() for f in pod["unnamed"]]
    problems = [f"a write met the read-only root: {line}" for line in report["refused_writes"]]
    return problems + [
        f"{f} was written, and no cache in tools/containers/writes.py says why" for f in unnamed
    ]


def _startup_order(plans: list[PodPlan]) -> list[PodPlan]:
    """The model servers first (their `stt serve` containers are the router's backends), so
    that each start is timed on a machine not busy starting the others."""
    return sorted(plans, key=lambda p: not _serves_model(p))


def _start(cluster: Cluster, kubelet: probes.Kubelet, plan: PodPlan) -> dict:
    pod = cluster.start(plan)
    figures = {"init_s": {k: round(v, 1) for k, v in pod.init_seconds.items()}}
    for name, started in pod.containers.items():
        figures[name] = probes.wait_ready(started, pod, cluster)
        kubelet.watch(started, pod)
        print(f"  {name}: {figures[name]}", file=sys.stderr, flush=True)
    return figures


def _clients(cluster: Cluster, tests: list[PodPlan]) -> list[dict]:
    router = _router(cluster)
    grpc_port = router.host_ports[router.containers["router"].plan.ports["grpc"]]
    http_port = router.host_ports[router.containers["router"].plan.ports["http"]]
    results = []
    for plan in tests:
        _step(f"helm test {plan.name}")
        results.append(clients.helm_test(cluster, plan))
    clips = [audio.spoken()] + [c for c in [audio.jfk()] if c is not None]
    for clip in clips:
        _step(f"Recognize and OpenAI API: {clip.name}")
        results.append(clients.recognize(grpc_port, clip))
        results.append(clients.openai_transcription(http_port, clip))
    _step("LongRunningRecognize with speakers")
    results.append(clients.long_running(grpc_port, audio.conversation(), speakers=2))
    for result in results:
        print(f"  {json.dumps(result)[:200]}", file=sys.stderr, flush=True)
    return results


def _step(what: str) -> None:
    print(f"container check: {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
