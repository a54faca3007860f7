"""A rendered pod as podman arguments, field by field, the way the kubelet would run it.

Every field of the pod and its containers is either applied (command and args, env, mounts,
securityContext, resources, ports, probes and the preStop hook, which probes.py and drain.py
run), checked to be what this check assumes (no API token, no Service variables), or one of
the scheduling fields a single machine has no use for; any other field stops the check, so
that nothing rendered is silently left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tools.containers.envvars import PodFields, resolve
from tools.containers.limits import known, resources_flags, seccomp_flags, security_flags
from tools.containers.render import PodTemplate, Rendered, RenderError

# Where a pod lands, who may preempt it, what pulls its image: nothing to do on one machine.
SCHEDULING = {
    "serviceAccountName",
    "nodeSelector",
    "tolerations",
    "affinity",
    "topologySpreadConstraints",
    "priorityClassName",
    "imagePullSecrets",
}
POD_APPLIED = {
    "containers",
    "initContainers",
    "volumes",
    "securityContext",
    "terminationGracePeriodSeconds",
    "restartPolicy",
    "automountServiceAccountToken",
    "enableServiceLinks",
}
POD_SECURITY = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "fsGroupChangePolicy"}
CONTAINER_FIELDS = {
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "workingDir",
    "ports",
    "env",
    "startupProbe",
    "readinessProbe",
    "livenessProbe",
    "lifecycle",
    "securityContext",
    "resources",
    "volumeMounts",
}


@dataclass
class VolumePlan:
    name: str
    kind: str  # emptyDir, persistentVolumeClaim, configMap or secret
    source: str  # its folder on this host
    files: dict[str, str] = field(default_factory=dict)
    mode: int = 0o777  # of the volume's root, as the kubelet leaves it
    gid: int | None = None  # fsGroup: the group that owns it


@dataclass
class ContainerPlan:
    name: str
    podman_name: str
    args: list[str]  # `podman create ARGS`: flags, the image, then its arguments
    env: dict[str, str]
    ports: dict[str, int]
    spec: dict  # as rendered: probes, preStop


@dataclass
class PodPlan:
    name: str
    owner: str
    ip: str
    create_args: list[str]  # `podman pod create ARGS`
    volumes: list[VolumePlan]
    init_containers: list[ContainerPlan]
    containers: list[ContainerPlan]
    grace_s: float
    published: list[int]


def plan_pod(
    pod: PodTemplate,
    rendered: Rendered,
    network: str,
    ip: str,
    hosts: list[tuple[str, str]],
    volumes_root: Path,
) -> PodPlan:
    """`volumes_root`: the host folder that holds every volume's folder (each is bind-mounted:
    no copy of the image's files into it and no change of owner, which podman's own volumes
    would make and the kubelet does not)."""
    spec = pod.spec
    known(f"{pod.owner} pod", spec, POD_APPLIED | SCHEDULING | {"securityContext"})
    if spec.get("automountServiceAccountToken", True):
        raise RenderError(f"{pod.owner}: mounts an API token; the check has no API to give")
    if spec.get("enableServiceLinks", True):
        raise RenderError(f"{pod.owner}: enableServiceLinks would add variables per Service")
    security = spec.get("securityContext", {})
    known(f"{pod.owner} securityContext", security, POD_SECURITY | {"seccompProfile"})
    seccomp_flags(pod.owner, security)
    group = security.get("fsGroup")
    volumes = [_volume(pod, v, rendered, group, volumes_root) for v in spec.get("volumes", [])]
    fields = PodFields(pod.name, rendered.namespace, "container-check", ip, "", pod.labels)
    init = [_container(pod, c, rendered, fields, volumes) for c in spec.get("initContainers", [])]
    main = [_container(pod, c, rendered, fields, volumes) for c in spec["containers"]]
    published = sorted({port for plan in main for port in plan.ports.values()})
    create = ["--name", pod.name, "--hostname", pod.name]
    create += ["--network", network, "--ip", ip, "--share", "ipc,net,uts"]
    for host, address in hosts:
        create += ["--add-host", f"{host}:{address}"]
    for port in published:
        create += ["--publish", f"127.0.0.1::{port}"]
    grace = float(spec.get("terminationGracePeriodSeconds", 30))
    return PodPlan(pod.name, pod.owner, ip, create, volumes, init, main, grace, published)


def _volume(pod: PodTemplate, volume: dict, rendered: Rendered, fs_group, root: Path) -> VolumePlan:
    name = volume["name"]
    folder = str(root / pod.name / name)
    if "emptyDir" in volume:
        if volume["emptyDir"].get("medium"):
            raise RenderError(f"{pod.owner}: emptyDir {name} on medium Memory")
        # The kubelet makes an emptyDir world-writable; fsGroup adds its group and setgid.
        mode = 0o2777 if fs_group is not None else 0o777
        return VolumePlan(name, "emptyDir", folder, mode=mode, gid=fs_group)
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]["claimName"]
        # A new volume's root is root's, 0755; fsGroup gives its group write and setgid.
        mode = 0o2775 if fs_group is not None else 0o755
        claimed = str(root / "claims" / claim)  # one folder per claim, whoever mounts it
        return VolumePlan(name, "persistentVolumeClaim", claimed, mode=mode, gid=fs_group)
    for kind, key, ref in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
        if kind in volume:
            source = volume[kind][ref]
            files = rendered.config_data(key, source)
            items = volume[kind].get("items")
            if items:
                files = {item["path"]: files[item["key"]] for item in items}
            mode = volume[kind].get("defaultMode", 0o644)  # of each file
            return VolumePlan(name, kind, folder, files, mode=mode, gid=fs_group)
    raise RenderError(f"{pod.owner}: volume {name} is of a kind this check does not make")


def _container(
    pod: PodTemplate, c: dict, rendered: Rendered, fields: PodFields, volumes: list[VolumePlan]
) -> ContainerPlan:
    where = f"{pod.owner} container {c['name']}"
    known(where, c, CONTAINER_FIELDS)
    podman_name = f"{pod.name}-{c['name']}"
    args = ["--pod", pod.name, "--name", podman_name, "--pull", "never"]
    args += security_flags(where, pod.spec.get("securityContext", {}), c.get("securityContext", {}))
    args += resources_flags(where, c.get("resources", {}))
    env = resolve(c.get("env", []), fields, rendered.config_data)
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    args += _mounts(where, c.get("volumeMounts", []), volumes)
    if "workingDir" in c:
        args += ["--workdir", c["workingDir"]]
    if "command" in c:
        args += ["--entrypoint", json.dumps(c["command"])]
    ports = {p.get("name", str(p["containerPort"])): p["containerPort"] for p in c.get("ports", [])}
    args += [c["image"], *c.get("args", [])]
    return ContainerPlan(c["name"], podman_name, args, env, ports, c)


def _mounts(where: str, mounts: list[dict], volumes: list[VolumePlan]) -> list[str]:
    by_name = {v.name: v for v in volumes}
    args = []
    for mount in mounts:
        unknown = set(mount) - {"name", "mountPath", "readOnly"}
        if unknown:
            raise RenderError(f"{where}: volumeMount fields {sorted(unknown)}")
        volume = by_name.get(mount["name"])
        if volume is None:
            raise RenderError(f"{where}: mounts {mount['name']}, which the pod does not have")
        # ConfigMaps and Secrets are always mounted read-only by the kubelet.
        read_only = mount.get("readOnly", False) or volume.kind in ("configMap", "secret")
        spec = f"type=bind,source={volume.source},destination={mount['mountPath']}"
        args += ["--mount", spec + (",ro=true" if read_only else "")]
    return args
