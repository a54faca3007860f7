"""The routing table: BCP-47 language patterns to ordered chains of backends.

A pattern is a language range (RFC 4647 basic filtering): `en` matches `en`, `en-US` and
`en-GB`; `en-US` matches `en-US` but not `en-GB`; a trailing `*` or `-*` (`en*`) means the
same as without it, and `*` alone matches every code. Matching ignores case and reads `_` as
`-`. The most specific matching pattern wins, so the order of routes does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.errors import UnsupportedLanguage
from services.router.config import ANY, DEFAULT_DETECTOR, RoutingConfig, normalise

# The name the router gives the diarization service among its backends.
DIARIZATION_BACKEND = "diarization"


@dataclass(frozen=True)
class Route:
    pattern: str  # canonical: 'en', 'en-us' or '*'
    backends: tuple[str, ...]

    def matches(self, code: str) -> bool:
        return self.pattern == ANY or code == self.pattern or code.startswith(self.pattern + "-")

    @property
    def specificity(self) -> int:
        return 0 if self.pattern == ANY else self.pattern.count("-") + 1


class RoutingTable:
    def __init__(self, config: RoutingConfig):
        self.backends = dict(config.backends)
        self.routes = _routes(config)
        self.detector = config.detector or (
            DEFAULT_DETECTOR if DEFAULT_DETECTOR in self.backends else ""
        )
        self.diarization = config.diarization
        if not self.routes:
            raise ValueError("the routing table has no routes: set ROUTER_ROUTES or a routes file")
        self._check_names()
        if self.diarization and DIARIZATION_BACKEND in self.backends:
            raise ValueError(
                f"a language backend may not be named {DIARIZATION_BACKEND!r}: the router gives "
                "that name to the diarization service"
            )

    @property
    def pool_targets(self) -> dict[str, str]:
        """Every service the router calls, by name: the language backends and diarization."""
        extra = {DIARIZATION_BACKEND: self.diarization} if self.diarization else {}
        return {**self.backends, **extra}

    @property
    def languages(self) -> list[str]:
        """The patterns served, as the router names them (health entries, error messages)."""
        return [route.pattern for route in self.routes]

    def route(self, code: str, detected: bool = False) -> Route:
        """The route for a language code; INVALID_ARGUMENT naming the languages served."""
        normalised = normalise(code)
        matching = [r for r in self.routes if r.matches(normalised)]
        if not matching:
            what = "the detected language" if detected else "language_code"
            served = ", ".join(self.languages)
            raise UnsupportedLanguage(
                f"{what} {code!r} is not served by the router; it serves: {served}"
            )
        return max(matching, key=lambda r: r.specificity)

    def detector_route(self) -> Route:
        """Where a request goes whose audio held no speech to detect a language in."""
        return Route(ANY, (self.detector,))

    def _check_names(self) -> None:
        named = {name for route in self.routes for name in route.backends}
        if self.detector:
            named.add(self.detector)
        missing = sorted(named - set(self.backends))
        if missing:
            raise ValueError(
                f"the routing table names backends with no target: {', '.join(missing)}"
            )


def _routes(config: RoutingConfig) -> list[Route]:
    for pattern, chain in config.routes.items():
        if not chain:
            raise ValueError(f"route {pattern!r} names no backend")
    return sorted((Route(p, c) for p, c in config.routes.items()), key=lambda r: r.pattern)
