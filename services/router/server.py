"""Hosts the router: its backend pool, its stt.v1.Speech servicer with health and reflection,
and its HTTP probes and metrics; drains like a language service on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from stt.v1 import stt_pb2_grpc

from services.core.health import State
from services.core.http import ProbeServer
from services.core.server import DRAIN_POLL_S, SPEECH_SERVICE, grpc_server
from services.jobs.db import open_database
from services.jobs.store import Store
from services.router.health import RouterLifecycle
from services.router.metrics import RouterMetrics
from services.router.pool import DIARIZATION_SERVICE, BackendPool
from services.router.routing import DIARIZATION_BACKEND, RoutingTable
from services.router.servicer import ROUTER, RouterServicer
from services.router.settings import RouterSettings

log = logging.getLogger("stt.router")
OPERATIONS_SERVICE = operations_pb2.DESCRIPTOR.services_by_name["Operations"].full_name


def open_store(settings: RouterSettings) -> Store:
    database = open_database(
        settings.data_dir, settings.database_url, settings.database_connections
    )
    return Store(database, settings.result_ttl_s)


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
        self.store = open_store(settings) if settings.jobs_enabled else None
        self.servicer = RouterServicer(
            settings, self.table, self.pool, self.lifecycle, self.metrics, self.store
        )
        self.metrics.sample_queue = self.servicer.operations.sample_queue
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
        self._grpc = grpc_server(
            self._add_servicers,
            [SPEECH_SERVICE, OPERATIONS_SERVICE],
            self.lifecycle,
            self.settings.max_message_bytes,
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

    def _add_servicers(self, server: grpc.aio.Server) -> None:
        stt_pb2_grpc.add_SpeechServicer_to_server(self.servicer, server)
        operations_pb2_grpc.add_OperationsServicer_to_server(self.servicer.operations, server)

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
        if self.store is not None:
            self.store.close()
        log.info("stopped")

    async def _backends_changed(self) -> None:
        covered = {
            route.pattern: any(self.pool.serving(name) for name in route.backends)
            for route in self.table.routes
        }
        await self.lifecycle.cover(covered)
