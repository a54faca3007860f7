"""Where the routing table comes from: a YAML file and two compact settings, layered.

The file (`ROUTER_ROUTES_FILE`) holds the whole table:

    backends:
      whisper_en: dns:///whisper-en.stt.svc.cluster.local:50051
      hausa_stt: dns:///hausa-stt.stt.svc.cluster.local:50051
    routes:
      en*: [whisper_en]
      ha: [hausa_stt, whisper_en]
    detector: whisper_en
    diarization: dns:///diarization.stt.svc.cluster.local:50051

`ROUTER_BACKENDS` (`name=target;name=target`) and `ROUTER_ROUTES`
(`pattern=backend,backend;pattern=backend`) lie over it: an entry with the same backend name
or the same pattern replaces the file's, so one file can serve several environments;
`ROUTER_DIARIZATION` replaces the file's diarization target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_DETECTOR = "whisper_en"
ANY = "*"
_RANGE = re.compile(r"^[a-z0-9]{1,8}(-[a-z0-9]{1,8})*$")


def normalise(code: str) -> str:
    return code.strip().replace("_", "-").lower()


def canonical_pattern(pattern: str) -> str:
    """'EN-*' -> 'en'; '*' stays '*'. Refuses what is not a language range."""
    text = normalise(pattern)
    if text == ANY:
        return ANY
    text = text.removesuffix("*").removesuffix("-")
    if not _RANGE.match(text):
        raise ValueError(f"route pattern {pattern!r} is not a BCP-47 language range")
    return text


@dataclass(frozen=True)
class RoutingConfig:
    """Backend targets by name; routes by canonical pattern (see `canonical_pattern`)."""

    backends: dict[str, str] = field(default_factory=dict)
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    detector: str = ""
    diarization: str = ""  # the diarization service's target; empty: none

    def overlay(self, top: RoutingConfig) -> RoutingConfig:
        """This table with `top`'s entries added, replacing those with the same key."""
        return RoutingConfig(
            backends={**self.backends, **top.backends},
            routes={**self.routes, **top.routes},
            detector=top.detector or self.detector,
            diarization=top.diarization or self.diarization,
        )


def parse_backends(text: str) -> dict[str, str]:
    """`name=target;name=target` -> {name: target}. Targets may hold commas (`ipv4:a,b`)."""
    backends = {}
    for entry in _entries(text):
        name, target = _split_pair(entry, "backend")
        backends[name] = target
    return backends


def parse_routes(text: str) -> dict[str, tuple[str, ...]]:
    """`pattern=backend,backend;pattern=backend` -> {pattern: (backend, ...)}."""
    routes: dict[str, tuple[str, ...]] = {}
    for entry in _entries(text):
        pattern, chain = _split_pair(entry, "route")
        add_route(routes, pattern, tuple(n.strip() for n in chain.split(",") if n.strip()))
    return routes


def load_file(path: Path) -> RoutingConfig:
    """Reads a YAML routing table; a mistake in it is a ValueError that names the file."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read the routing file {path}: {error}") from error
    keys = {"backends", "routes", "detector", "diarization"}
    if not isinstance(document, dict) or set(document) - keys:
        raise ValueError(
            f"{path}: expected a mapping with backends, routes, detector and diarization"
        )
    backends = document.get("backends") or {}
    routes = document.get("routes") or {}
    if not isinstance(backends, dict) or not isinstance(routes, dict):
        raise ValueError(f"{path}: backends and routes must be mappings")
    table: dict[str, tuple[str, ...]] = {}
    for pattern, chain in routes.items():
        add_route(table, str(pattern), _chain(chain))
    return RoutingConfig(
        backends={str(name): str(target) for name, target in backends.items()},
        routes=table,
        detector=str(document.get("detector") or ""),
        diarization=str(document.get("diarization") or ""),
    )


def add_route(routes: dict[str, tuple[str, ...]], pattern: str, chain: tuple[str, ...]) -> None:
    canonical = canonical_pattern(pattern)
    if canonical in routes:
        raise ValueError(f"route pattern {pattern!r} repeats another one ({canonical!r})")
    routes[canonical] = chain


def _chain(value: object) -> tuple[str, ...]:
    """A route's backends: a list, or a single name."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(name) for name in value)
    raise ValueError(f"a route's backends must be a name or a list of names, got {value!r}")


def _entries(text: str) -> list[str]:
    return [entry.strip() for entry in text.split(";") if entry.strip()]


def _split_pair(entry: str, what: str) -> tuple[str, str]:
    key, sep, value = entry.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"{what} entry {entry!r} must look like key=value")
    return key.strip(), value.strip()
