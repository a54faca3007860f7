"""A container's environment as the kubelet makes it: values from the pod's fields, ConfigMaps
and Secrets, and `$(NAME)` references to variables defined before, expanded in order."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# $$ is an escaped dollar; $(NAME) a reference; anything else stays as it is.
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class EnvError(ValueError):
    """A variable this check cannot give the value the kubelet would."""


@dataclass(frozen=True)
class PodFields:
    name: str
    namespace: str
    node: str
    ip: str
    service_account: str
    labels: dict


def expand(text: str, defined: dict[str, str]) -> str:
    """Kubernetes' expansion: $(NAME) of a variable defined before, `$$` as `$`; a reference
    to an undefined variable is left as written."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return defined.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def resolve(
    env: list[dict], pod: PodFields, lookup: Callable[[str, str], dict[str, str]]
) -> dict[str, str]:
    """The variables, in order; `lookup(kind, name)` gives a ConfigMap's or Secret's data."""
    values: dict[str, str] = {}
    for entry in env:
        name = entry["name"]
        if "value" in entry:
            values[name] = expand(str(entry["value"]), values)
        elif "valueFrom" in entry:
            found = _value_from(name, entry["valueFrom"], pod, lookup)
            if found is not None:
                values[name] = found
        else:
            values[name] = ""
    return values


def _value_from(name: str, source: dict, pod: PodFields, lookup) -> str | None:
    if "fieldRef" in source:
        return _field(name, source["fieldRef"]["fieldPath"], pod)
    for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
        if key in source:
            ref = source[key]
            data = lookup(kind, ref["name"])
            if ref["key"] in data:
                return data[ref["key"]]
            if ref.get("optional"):
                return None
            raise EnvError(f"{name}: {kind} {ref['name']} has no key {ref['key']!r}")
    raise EnvError(f"{name}: valueFrom {sorted(source)} is not something this check resolves")


def _field(name: str, path: str, pod: PodFields) -> str:
    fields = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "spec.nodeName": pod.node,
        "status.podIP": pod.ip,
        "spec.serviceAccountName": pod.service_account,
    }
    if path in fields:
        return fields[path]
    label = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
    if label:
        return str(pod.labels.get(label.group(1), ""))
    raise EnvError(f"{name}: fieldRef {path} is not something this check resolves")
