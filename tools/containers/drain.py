"""Stopping a pod as the kubelet does: every container's preStop hook, then SIGTERM, all
within the pod's terminationGracePeriodSeconds (the hook's time counts). A container must
exit on its own, with status 0, before the period ends; the kubelet would kill it after."""

from __future__ import annotations

import threading
import time

from tools.containers.pods import Cluster, RunningPod, Started


def stop_pod(cluster: Cluster, pod: RunningPod) -> list[dict]:
    """Drains the pod's containers at once (as the kubelet does), one thread each."""
    results: list[dict] = []
    threads = [
        threading.Thread(target=lambda s=s: results.append(_stop(cluster, pod, s)))
        for s in pod.containers.values()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(pod.plan.grace_s + 60)
    return results


def _stop(cluster: Cluster, pod: RunningPod, started: Started) -> dict:
    name = started.plan.podman_name
    grace = pod.plan.grace_s
    result = {"container": name, "grace_s": grace}
    if not cluster.running(name):
        return {
            **result,
            "ok": False,
            "why": f"not running before SIGTERM (exit {cluster.exit_code(name)})",
        }
    begun = time.monotonic()
    hook = started.plan.spec.get("lifecycle", {}).get("preStop", {})
    if "exec" in hook:
        done = cluster.podman.run(
            "exec", name, *hook["exec"]["command"], check=False, timeout=grace
        )
        result["pre_stop_s"] = round(time.monotonic() - begun, 2)
        if done.returncode != 0:
            result["pre_stop_failed"] = f"exit {done.returncode}: {done.stderr.strip()}"
    elif hook:
        return {**result, "ok": False, "why": f"preStop {sorted(hook)} is not run by this check"}
    signalled = time.monotonic()
    cluster.podman.run("kill", "--signal", "TERM", name)
    while cluster.running(name) and time.monotonic() - begun < grace:
        time.sleep(0.1)
    result["after_sigterm_s"] = round(time.monotonic() - signalled, 2)
    result["total_s"] = round(time.monotonic() - begun, 2)
    if cluster.running(name):
        cluster.podman.run("kill", "--signal", "KILL", name, check=False)
        return {**result, "ok": False, "why": f"still running {grace:.0f} s after the stop began"}
    code = cluster.exit_code(name)
    result["exit"] = code
    result["ok"] = code == 0 and "pre_stop_failed" not in result
    if not result["ok"]:
        result["why"] = result.get("pre_stop_failed") or f"exit status {code}"
    return result
