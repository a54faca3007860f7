"""Hosts the router: its backend pool and request path; on the gRPC port stt.v1.Speech with
health and reflection, and the Google and Riva services; on the HTTP port metrics, probes and
the OpenAI audio API. Drains like a language service on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from services.core.health import State
from services.core.http import HttpServer
from services.core.server import DRAIN_POLL_S, speech_grpc_server
from services.router.dropin import riva_service
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
        self.servicer = RouterServicer(self.path)
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
        self._grpc = speech_grpc_server(
            self.servicer,
            self.lifecycle,
            self.settings.max_message_bytes,
            *self._dropin_services(),
        )
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
        log.info("stopped")

    def _dropin_services(self) -> tuple[list[grpc.GenericRpcHandler], list[str]]:
        """The Google and Riva services the settings switch on, and their names to reflect
        (Google's package ships no service descriptor, so reflection cannot list it)."""
        handlers, reflected = [], []
        if self.settings.google_speech_api:
            handlers.append(GoogleSpeech(self.path).handler())
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
