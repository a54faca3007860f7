"""A pod's and a container's securityContext and resources as podman flags, as the kubelet
applies them; a field it would apply and this check does not stops the check."""

from __future__ import annotations

from tools.containers.render import RenderError
from tools.containers.units import cpu_shares, cpus, memory_bytes

CONTAINER_SECURITY = {
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "privileged",
    "capabilities",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "seccompProfile",
}


def known(where: str, found: dict, allowed: set[str]) -> None:
    unknown = sorted(set(found) - allowed)
    if unknown:
        raise RenderError(f"{where}: {unknown} rendered, and this check does not apply them")


def seccomp_flags(where: str, security: dict) -> list[str]:
    kind = security.get("seccompProfile", {}).get("type", "RuntimeDefault")
    if kind == "RuntimeDefault":
        return []  # podman's default profile is the runtime's default
    if kind == "Unconfined":
        return ["--security-opt", "seccomp=unconfined"]
    raise RenderError(f"{where}: seccompProfile {kind} is not something this check applies")


def security_flags(where: str, pod: dict, container: dict) -> list[str]:
    known(f"{where} securityContext", container, CONTAINER_SECURITY)
    merged = {**pod, **container}
    if "runAsUser" not in merged:
        raise RenderError(f"{where}: no runAsUser; the check runs the rendered uid only")
    uid, gid = merged["runAsUser"], merged.get("runAsGroup", 0)
    if merged.get("runAsNonRoot") and uid == 0:
        raise RenderError(f"{where}: runAsNonRoot with runAsUser 0")
    args = ["--user", f"{uid}:{gid}"]
    if "fsGroup" in pod:  # the kubelet adds fsGroup to every container's groups
        args += ["--group-add", str(pod["fsGroup"])]
    if merged.get("readOnlyRootFilesystem"):
        # Only what the pod mounts is writable: no tmpfs of podman's own on /tmp or /run.
        args += ["--read-only=true", "--read-only-tmpfs=false"]
    if merged.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if merged.get("privileged"):
        raise RenderError(f"{where}: privileged containers are not run by this check")
    capabilities = merged.get("capabilities", {})
    for cap in capabilities.get("drop", []):
        args += ["--cap-drop", cap]
    for cap in capabilities.get("add", []):
        args += ["--cap-add", cap]
    return args + seccomp_flags(where, merged)


def resources_flags(where: str, resources: dict) -> list[str]:
    args = []
    for kind, values in resources.items():
        unknown = set(values) - {"cpu", "memory"}
        if kind not in ("requests", "limits") or unknown:
            raise RenderError(f"{where}: resources {kind} {sorted(unknown)} (no GPUs here)")
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    if "memory" in limits:
        args += ["--memory", str(memory_bytes(limits["memory"]))]
    if "cpu" in limits:
        args += ["--cpus", str(cpus(limits["cpu"]))]
    if "cpu" in requests:  # the kubelet's cpu.shares for a request
        args += ["--cpu-shares", str(cpu_shares(requests["cpu"]))]
    return args  # a memory request only places the pod; nothing enforces it
