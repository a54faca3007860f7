"""The router's health: its own lifecycle, narrowed by what its backends can serve.

gRPC health reads SERVING for the whole server ("" and `stt.v1.Speech`) while every route has
a serving backend, and for `stt.v1.Speech/<language>` while that route has one. `/readyz`
and the health entry `router` follow the router's own lifecycle only: a router that can still
serve some languages stays in its load balancer, and a cluster's gRPC probes ask `router`, so
a backend that is down never restarts the router or takes it out of its Service.
"""

from __future__ import annotations

from services.core.health import Lifecycle
from services.core.names import SPEECH_SERVICE
from services.router.metrics import RouterMetrics

# The health entry that follows the router's own lifecycle (started, not draining), as /readyz.
SELF_ENTRY = "router"


def language_entry(language: str) -> str:
    return f"{SPEECH_SERVICE}/{language}"


class RouterLifecycle(Lifecycle):
    def __init__(self, languages: list[str], metrics: RouterMetrics):
        entries = [SPEECH_SERVICE, SELF_ENTRY, *map(language_entry, languages)]
        super().__init__(entries, metrics)
        self._router_metrics = metrics
        self._covered = dict.fromkeys(languages, False)

    @property
    def all_covered(self) -> bool:
        return self.ready and all(self._covered.values())

    def serving(self, name: str) -> bool:
        if name == SELF_ENTRY:
            return self.ready
        _, _, language = name.partition("/")
        if language:
            return self.ready and self._covered[language]
        return self.all_covered

    async def cover(self, covered: dict[str, bool]) -> None:
        """Takes which languages have a serving backend now, and tells health checks."""
        self._covered.update(covered)
        for language, up in self._covered.items():
            self._router_metrics.language_up.labels(self._router_metrics.service, language).set(
                1 if up else 0
            )
        await self.publish()
