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

from tools.containers import base, build, clients, drain, probes, render, rounds
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
    rounds.step("base image")
    seconds = round(base.ensure_base(podman, args.workdir, log, args.rebuild_base), 1)
    size = int(podman.inspect("image", base.BASE_IMAGE)["Size"])
    report["base_image"] = {"tag": base.BASE_IMAGE, "seconds": seconds, "size_bytes": size}
    podman.preflight(base.BASE_IMAGE)
    if args.no_build and podman.exists("image", build.cpu_tag()):
        size = int(podman.inspect("image", build.cpu_tag())["Size"])
        report["cpu_image"] = {"tag": build.cpu_tag(), "size_bytes": size, "built": False}
    else:
        rounds.step("CPU image (docker/Dockerfile)")
        built = build.build_cpu(podman, args.workdir, log)
        report["cpu_image"] = {
            "tag": built.tag,
            "size_bytes": built.size_bytes,
            "seconds": round(built.seconds, 1),
        }
    if not args.no_cuda:
        rounds.step("CUDA image (docker/Dockerfile.cuda)")
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
        rounds.step(f"pod {plan.name}")
        report["pods"][plan.name] = _start(cluster, kubelet, plan)
    tested = [plan_pod(p, rendered, NETWORK, ips[p.name], hosts, volumes) for p in tests]
    report["clients"] = rounds.calls(cluster, tested)
    problems = rounds.probed(kubelet, report)
    servers = [cluster.pods[p.name] for p in plans if _serves_model(p)]
    rounds.step("SIGTERM to the model servers, then a restart in the same pod")
    report["drain"] = [
        {**r, "when": "before a restart"} for pod in servers for r in drain.stop_pod(cluster, pod)
    ]
    kubelet = probes.Kubelet(cluster)  # a restarted container's probes start afresh
    report["restart"] = {pod.plan.name: rounds.restart(cluster, kubelet, pod) for pod in servers}
    report["clients"].append(rounds.after_restart(cluster))
    problems += rounds.probed(kubelet, report)
    rounds.step("SIGTERM to every pod")
    served = [cluster.pods[plan.name] for plan in plans]  # the test pods have ended
    report["drain"] += [
        {**r, "when": "at the end"} for pod in served for r in drain.stop_pod(cluster, pod)
    ]
    problems += rounds.written(cluster, report)
    problems += [f"{r['container']}: {r['why']}" for r in report["drain"] if not r["ok"]]
    if problems:
        raise EngineError("; ".join(problems))


def _serves_model(plan: PodPlan) -> bool:
    return plan.containers[0].spec.get("args", [""])[0] == "serve"


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


if __name__ == "__main__":
    sys.exit(main())
