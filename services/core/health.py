"""The service's lifecycle state, told to gRPC health checks, HTTP probes and a metric.

STARTING until the model is loaded and one warm-up inference ran, SERVING after, DRAINING from
SIGTERM on (refusing new work while in-flight requests finish), FAILED if loading failed.
A server whose health entries depend on more than its own state (the router's follow its
backends) narrows `serving` in a subclass and calls `publish` when that changes.
"""

from __future__ import annotations

import enum

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from services.core.errors import NotReady
from services.core.metrics import ServerMetrics


class State(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"
    FAILED = "failed"


_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Lifecycle:
    def __init__(self, grpc_service_names: list[str], metrics: ServerMetrics):
        self.health = HealthServicer()
        self._names = ["", *grpc_service_names]  # "" is the whole server
        self._metrics = metrics
        self.state = State.STARTING

    @property
    def ready(self) -> bool:
        return self.state is State.SERVING

    @property
    def live(self) -> bool:
        return self.state is not State.FAILED

    def require_ready(self) -> None:
        if self.state is State.STARTING:
            raise NotReady("the model is still loading or warming up; retry shortly")
        if self.state is State.DRAINING:
            raise NotReady("the service is shutting down; send the request to another replica")
        if self.state is State.FAILED:
            raise NotReady("the model failed to load; see the service log")

    def serving(self, name: str) -> bool:
        """What the health entry `name` reports: SERVING (True) or NOT_SERVING."""
        return self.ready

    async def set(self, state: State) -> None:
        self.state = state
        await self.publish()
        self._metrics.ready.labels(self._metrics.service).set(1 if self.ready else 0)

    async def publish(self) -> None:
        for name in self._names:
            await self.health.set(name, _SERVING if self.serving(name) else _NOT_SERVING)
