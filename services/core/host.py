"""Every server's life, written once: listen, load, serve, drain.

A `ServerHost` runs a gRPC server (its services, health and reflection) and an HTTP server
(`/metrics`, `/healthz`, `/readyz` and any routes of its own) around one `Lifecycle`. What it
hosts it learns from its subclass: the model servers (`services/core/server.py`), the router
and the job worker each say what to open before listening, what to load after, what work a
drain waits for and what to close. Tests build one in process on port 0; the command line
runs `serve`, which starts it, and drains it on SIGTERM or SIGINT.

With a certificate (`<PREFIX>_TLS_CERT_FILE`) both ports serve TLS only, mutual TLS with a
client CA, the files read again when they change (`services/core/tls.py`); a health port
(`<PREFIX>_HEALTH_PORT`) then answers the probes that cannot speak TLS in plain text, with
the server's state and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from starlette.routing import BaseRoute

from services.core.health import Lifecycle, State
from services.core.http import HttpServer
from services.core.metrics import ServerMetrics
from services.core.names import HEALTH_SERVICE, MIN_PING_INTERVAL_S
from services.core.settings import ServerSettings
from services.core.tls import grpc_server_credentials, http_server_context

log = logging.getLogger("stt.server")
DRAIN_POLL_S = 0.05


class ServerHost:
    """Subclasses override the hooks below; the rest is the same for every server."""

    #: Load in the background after listening (a model: NOT_SERVING until it is warm), or
    #: serve as soon as the server listens (the router).
    background_load = True
    #: Whether the server has a gRPC port at all (the job worker has only its HTTP port).
    serves_grpc = True

    def __init__(
        self,
        service: str,
        settings: ServerSettings,
        lifecycle: Lifecycle,
        metrics: ServerMetrics,
        http_routes: Sequence[BaseRoute] = (),
    ):
        self.service = service
        self.settings = settings
        self.lifecycle = lifecycle
        self.metrics = metrics
        # Raises TlsError (a ValueError) naming files that cannot be used, before listening.
        self.certificates = settings.tls.certificates()
        tls = None if self.certificates is None else http_server_context(self.certificates)
        self.http = HttpServer(
            settings.host, settings.http_port, lifecycle, metrics, http_routes, tls=tls
        )
        self.health_http = None
        if settings.health_port is not None:
            self.health_http = HttpServer(
                settings.host, settings.health_port, lifecycle, metrics, health_only=True
            )
        self.grpc_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._loading: asyncio.Task | None = None

    # Hooks.
    @property
    def max_message_bytes(self) -> int:
        """The largest gRPC message the server reads."""
        raise NotImplementedError

    def add_services(self, server: grpc.aio.Server) -> list[str]:
        """Adds the hosted gRPC services to `server`; the names reflection lists."""
        return []

    async def open(self) -> None:
        """Before the server listens (the router opens its backends' channels)."""

    async def load(self) -> None:
        """After the server listens; an exception leaves the server FAILED."""

    def busy(self) -> int:
        """Work in hand that a drain lets finish."""
        return 0

    async def quiesce(self) -> None:
        """At the start of a drain: stop taking work from elsewhere (the worker's queue)."""

    async def close(self) -> None:
        """After the gRPC server stopped: release what `open` and `load` took."""

    # The life every server shares.
    @property
    def http_port(self) -> int:
        return self.http.port

    @property
    def health_port(self) -> int | None:
        return None if self.health_http is None else self.health_http.port

    async def start(self) -> None:
        """Listens at once (NOT_SERVING), then loads what it hosts and serves."""
        await self.lifecycle.set(State.STARTING)
        await self.open()
        if self.serves_grpc:
            self._grpc = self._grpc_server()
            address = f"{self.settings.host}:{self.settings.grpc_port}"
            if self.certificates is None:
                self.grpc_port = self._grpc.add_insecure_port(address)
            else:
                credentials = grpc_server_credentials(self.certificates)
                self.grpc_port = self._grpc.add_secure_port(address, credentials)
            await self._grpc.start()
        await self.http.start()
        if self.health_http is not None:
            await self.health_http.start()
        log.info(
            "listening",
            extra={
                "grpc_port": self.grpc_port,
                "http_port": self.http_port,
                "health_port": self.health_port,
                "tls": _tls_mode(self.certificates),
            },
        )
        if self.background_load:
            self._loading = asyncio.create_task(self._load())
        else:
            await self._load()

    async def wait_loaded(self) -> bool:
        """Waits for loading; True when SERVING, False when it failed."""
        if self._loading is not None:
            await self._loading
        return self.lifecycle.ready

    async def drain(self, grace_s: float) -> None:
        """Refuses new work, lets the work in hand finish within `grace_s`, then stops.

        Health turns NOT_SERVING first and the server keeps answering meanwhile, so load
        balancers see the change and new requests get UNAVAILABLE rather than a reset.
        """
        if self.lifecycle.state is not State.FAILED:
            await self.lifecycle.set(State.DRAINING)
        log.info("draining", extra={"grace_s": grace_s, "in_flight": self.busy()})
        deadline = time.monotonic() + grace_s
        await self.quiesce()
        while self.busy() and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        if self._grpc is not None:
            await self._grpc.stop(max(0.0, deadline - time.monotonic()))
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        await self.close()
        await self.http.stop()
        if self.health_http is not None:
            await self.health_http.stop()
        log.info("stopped")

    async def _load(self) -> None:
        try:
            await self.load()
        except Exception:
            log.exception("start-up failed", extra={"service": self.service})
            await self.lifecycle.set(State.FAILED)
            return
        await self.lifecycle.set(State.SERVING)

    def _grpc_server(self) -> grpc.aio.Server:
        """The gRPC server with the hosted services, health and reflection, as every server
        runs it. Made on the running event loop, which grpc.aio binds the server to."""
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self.max_message_bytes),
                ("grpc.so_reuseport", 0),
                ("grpc.keepalive_permit_without_calls", 1),
                (
                    "grpc.http2.min_ping_interval_without_data_ms",
                    round(MIN_PING_INTERVAL_S * 1000),
                ),
            ]
        )
        names = self.add_services(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.lifecycle.health, server)
        reflection.enable_server_reflection(
            [*names, HEALTH_SERVICE, reflection.SERVICE_NAME], server
        )
        return server


def _tls_mode(certificates) -> str:
    if certificates is None:
        return "off"
    return "mutual" if certificates.mutual else "on"


async def serve(server: ServerHost) -> int:
    """Runs until SIGTERM/SIGINT (exit 0 after draining) or a failed start-up (exit 1)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    loaded = asyncio.create_task(server.wait_loaded())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({loaded, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if loaded.done() and not loaded.result():
        await server.drain(0)
        return 1
    await stopping
    await server.drain(server.settings.drain_grace_s)
    return 0
