"""Hosts the router: its backend pool, its stt.v1.Speech servicer with health and reflection,
and its HTTP probes and metrics; drains like a language service on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from services.core.health import State
from services.core.http import ProbeServer
from services.core.server import DRAIN_POLL_S, speech_grpc_server
from services.router.health import RouterLifecycle
from services.router.metrics import RouterMetrics
from services.router.pool import DIARIZATION_SERVICE, BackendPool
from services.router.routing import DIARIZATION_BACKEND, RoutingTable
from services.router.servicer import ROUTER, RouterServicer
from services.router.settings import RouterSettings

log = logging.getLogger("stt.router")


class RouterServer:
    def __init__(self, settings: RouterSettings, table: RoutingTable | None = None):
        self.settings = settings
        self.table = table or RoutingTable(settings.routing())
        self.metrics = RouterMetrics(ROUTER)
        self.lifecycle = RouterLifecycle(self.table.languages, self.metrics)
        self.pool = BackendPool(
            self.table.pool_targets,
            settings,
            self.metrics,
            self._backends_changed,
            {DIARIZATION_BACKEND: DIARIZATION_SERVICE},
        )
        self.servicer = RouterServicer(
            settings, self.table, self.pool, self.lifecycle, self.metrics
        )
        self.probes = ProbeServer(settings.host, settings.http_port, self.lifecycle, self.metrics)
        self._grpc: grpc.aio.Server | None = None
        self.grpc_port = 0

    @property
    def http_port(self) -> int:
        return self.probes.port

    async def start(self) -> None:
        """Opens the backend channels, checks every backend once, then starts serving."""
        await self.lifecycle.set(State.STARTING)
        await self.pool.start()
        self._grpc = speech_grpc_server(
            self.servicer, self.lifecycle, self.settings.max_message_bytes
        )
        address = f"{self.settings.host}:{self.settings.grpc_port}"
        self.grpc_port = self._grpc.add_insecure_port(address)
        await self._grpc.start()
        self.probes.start()
        await self.lifecycle.set(State.SERVING)
        log.info(
            "listening",
            extra={
                "grpc_port": self.grpc_port,
                "http_port": self.http_port,
                "routes": {r.pattern: list(r.backends) for r in self.table.routes},
                "backends": self.table.backends,
                "diarization": self.table.diarization,
            },
        )

    async def wait_loaded(self) -> bool:
        """The router loads nothing: it is up once started."""
        return True

    async def drain(self, grace_s: float) -> None:
        """Refuses new requests, lets those in flight finish within `grace_s`, then stops."""
        await self.lifecycle.set(State.DRAINING)
        log.info("draining", extra={"grace_s": grace_s, "in_flight": self.servicer.in_flight})
        deadline = time.monotonic() + grace_s
        while self.servicer.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        if self._grpc is not None:
            await self._grpc.stop(max(0.0, deadline - time.monotonic()))
        await self.pool.close()
        self.servicer.shutdown()
        self.probes.stop()
        log.info("stopped")

    async def _backends_changed(self) -> None:
        covered = {
            route.pattern: any(self.pool.serving(name) for name in route.backends)
            for route in self.table.routes
        }
        await self.lifecycle.cover(covered)
