"""The chart as `helm template` renders it: the objects, the pods its workloads make, and the
names cluster DNS would answer for its Services."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools.helm import helm_path

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "stt-suite"
CHECK_VALUES = CHART / "ci" / "container-check-values.yaml"
RELEASE = "stt"
NAMESPACE = "speech"
# Kinds that shape a cluster's scheduling, scaling, access or monitoring, and start nothing.
NOT_RUN = {
    "ServiceAccount",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "ServiceMonitor",
    "PrometheusRule",
}


class RenderError(ValueError):
    """The rendered objects hold something this check cannot start as it was rendered."""


@dataclass(frozen=True)
class PodTemplate:
    name: str  # the pod's name (the Deployment's, with a replica suffix)
    owner: str  # `Deployment/<name>` or `Pod/<name>`
    labels: dict
    spec: dict


@dataclass
class Rendered:
    objects: list[dict]
    namespace: str
    cluster_domain: str

    def of_kind(self, kind: str) -> dict[str, dict]:
        return {o["metadata"]["name"]: o for o in self.objects if o["kind"] == kind}

    def workloads(self) -> list[PodTemplate]:
        """One pod per Deployment (a check needs one replica of each); hook pods are not here."""
        unknown = (
            {o["kind"] for o in self.objects}
            - NOT_RUN
            - {
                "Deployment",
                "Service",
                "ConfigMap",
                "Secret",
                "PersistentVolumeClaim",
                "Pod",
            }
        )
        if unknown:
            raise RenderError(f"the check cannot start objects of kind {sorted(unknown)}")
        pods = []
        for name, deployment in self.of_kind("Deployment").items():
            template = deployment["spec"]["template"]
            labels = template["metadata"].get("labels", {})
            pods.append(PodTemplate(f"{name}-0", f"Deployment/{name}", labels, template["spec"]))
        return pods

    def test_pods(self) -> list[PodTemplate]:
        """The `helm test` pods (hook `test`), run once the release is up."""
        return [
            PodTemplate(name, f"Pod/{name}", pod["metadata"].get("labels", {}), pod["spec"])
            for name, pod in self.of_kind("Pod").items()
            if pod["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
        ]

    def service_names(self, name: str) -> list[str]:
        """What a Service's name resolves as inside the cluster: alone and qualified."""
        ns, domain = self.namespace, self.cluster_domain
        return [name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{domain}"]

    def hosts(self, ip_of: dict[str, str]) -> list[tuple[str, str]]:
        """(name, address) for every Service name, to the one pod its selector picks; a
        Service whose port differs from its target cannot be a host entry, and is refused."""
        entries = []
        for name, service in self.of_kind("Service").items():
            selector = service["spec"].get("selector", {})
            chosen = [p for p in self.workloads() if selector.items() <= p.labels.items()]
            if len(chosen) != 1:
                raise RenderError(f"Service {name} selects {len(chosen)} pods here, not one")
            _check_ports(name, service, chosen[0])
            entries += [(host, ip_of[chosen[0].name]) for host in self.service_names(name)]
        return entries

    def config_data(self, kind: str, name: str) -> dict[str, str]:
        """A ConfigMap's or Secret's keys and their text values."""
        found = self.of_kind(kind).get(name)
        if found is None:
            raise RenderError(f"{kind} {name} is not among the rendered objects")
        if kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in found.get("data", {}).items()}
            return {**data, **found.get("stringData", {})}
        return dict(found.get("data", {}))


def _check_ports(name: str, service: dict, pod: PodTemplate) -> None:
    named = {
        port["name"]: port["containerPort"]
        for container in pod.spec["containers"]
        for port in container.get("ports", [])
        if "name" in port
    }
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        number = named.get(target) if isinstance(target, str) else target
        if number != port["port"]:
            raise RenderError(
                f"Service {name} port {port['port']} goes to {target} ({number}): a host entry "
                "cannot move a port"
            )


def render(values: Path = CHECK_VALUES, *extra: str) -> Rendered:
    command = [str(helm_path()), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    command += ["-f", str(values), *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RenderError(f"helm template failed: {done.stderr.strip()}")
    objects = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return Rendered(objects, NAMESPACE, _cluster_domain(values))


def _cluster_domain(values: Path) -> str:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    given = yaml.safe_load(values.read_text(encoding="utf-8")) or {}
    return given.get("clusterDomain", defaults["clusterDomain"])
