"""Hosts the router: its backend pool, request path and job store; on the gRPC port
stt.v1.Speech and google.longrunning.Operations with health and reflection, and the Google and
Riva services; on the HTTP port metrics, probes and
the OpenAI audio API. Drains like a language service on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc

from services.core.audio import AudioLimits
from services.core.health import State
from services.core.http import HttpServer
from services.core.server import DRAIN_POLL_S, speech_grpc_server
from services.jobs.db import open_database
from services.jobs.intake import JobIntake
from services.jobs.operations import STT_API, STT_DIALECT
from services.jobs.service import OperationsServicer
from services.jobs.store import Store
from services.router.dropin import google_jobs, riva_service
from services.router.dropin.google_service import API as GOOGLE_API
from services.router.dropin.google_service import GoogleSpeech
from services.router.dropin.openai_routes import openai_routes
from services.router.dropin.riva_service import RivaSpeech
from services.router.health import RouterLifecycle
from services.router.metrics import RouterMetrics
from services.router.path import ROUTER, RequestPath
from services.router.pool import DIARIZATION_SERVICE, BackendPool
from services.router.routing import DIARIZATION_BACKEND, RoutingTable
from services.router.servicer import RouterServicer
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
        self.path = RequestPath(settings, self.table, self.pool, self.lifecycle, self.metrics)
        self.store = open_store(settings) if settings.jobs_enabled else None
        # Jobs answer in the dialect they came in, even with that API since switched off.
        dialects = {STT_API: STT_DIALECT, GOOGLE_API: google_jobs.DIALECT}
        self.operations = OperationsServicer(
            self.path, self.store, self._intake(), self.metrics, dialects
        )
        self.metrics.sample_queue = self.operations.sample_queue
        self.servicer = RouterServicer(self.path, self.operations)
        routes = openai_routes(self.path) if settings.openai_audio_api else []
        self.http = HttpServer(
            settings.host, settings.http_port, self.lifecycle, self.metrics, routes
        )
        self._grpc: grpc.aio.Server | None = None
        self.grpc_port = 0

    @property
    def http_port(self) -> int:
        return self.http.port

    async def start(self) -> None:
        """Opens the backend channels, checks every backend once, then starts serving."""
        await self.lifecycle.set(State.STARTING)
        await self.pool.start()
        handlers, reflected = self._dropin_services()
        self._grpc = speech_grpc_server(
            self.servicer,
            self.lifecycle,
            self.settings.max_message_bytes,
            handlers,
            [*reflected, OPERATIONS_SERVICE],
        )
        operations_pb2_grpc.add_OperationsServicer_to_server(self.operations, self._grpc)
        address = f"{self.settings.host}:{self.settings.grpc_port}"
        self.grpc_port = self._grpc.add_insecure_port(address)
        await self._grpc.start()
        await self.http.start()
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
        log.info("draining", extra={"grace_s": grace_s, "in_flight": self.path.in_flight})
        deadline = time.monotonic() + grace_s
        while self.path.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        if self._grpc is not None:
            await self._grpc.stop(max(0.0, deadline - time.monotonic()))
        await self.pool.close()
        self.path.shutdown()
        await self.http.stop()
        if self.store is not None:
            self.store.close()
        log.info("stopped")

    def _intake(self) -> JobIntake | None:
        """LongRunningRecognize's checks and quota, when the router keeps jobs."""
        if self.store is None:
            return None
        limits = AudioLimits(self.settings.max_message_bytes, self.settings.job_max_audio_seconds)
        return JobIntake(self.store, self.table, self.settings.quota_policy(), limits)

    def _dropin_services(self) -> tuple[list[grpc.GenericRpcHandler], list[str]]:
        """The Google and Riva services the settings switch on, and their names to reflect
        (Google's package ships no service descriptor, so reflection cannot list it)."""
        handlers, reflected = [], []
        if self.settings.google_speech_api:
            handlers.append(GoogleSpeech(self.path, self.operations).handler())
        if self.settings.riva_asr_api:
            handlers.append(RivaSpeech(self.path).handler())
            reflected.append(riva_service.SERVICE)
        return handlers, reflected

    async def _backends_changed(self) -> None:
        covered = {
            route.pattern: any(self.pool.serving(name) for name in route.backends)
            for route in self.table.routes
        }
        await self.lifecycle.cover(covered)
