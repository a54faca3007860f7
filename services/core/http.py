"""The HTTP side of every server: /metrics for Prometheus, /healthz (live) and /readyz (ready),
plus whatever routes a server adds (the router's OpenAI audio API); and the plain-text health
listener beside ports that serve TLS, with /healthz and /readyz alone.

An ASGI app (Starlette) served by uvicorn on the server's own event loop, beside its gRPC
server. The socket is bound when the server is made, so a port already taken is an error
before anything starts, and port 0 picks a free one that `port` then tells.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator, Sequence

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from services.core.health import Lifecycle
from services.core.metrics import ServerMetrics

# Long enough for a response being written to finish; drains wait for requests beforehand.
SHUTDOWN_GRACE_S = 5.0
BACKLOG = 256


def probe_routes(
    lifecycle: Lifecycle, metrics: ServerMetrics, with_metrics: bool = True
) -> list[Route]:
    async def scrape(request: Request) -> Response:
        metrics.before_scrape()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def probe(ok: bool) -> Response:
        return PlainTextResponse(f"{lifecycle.state.value}\n", status_code=200 if ok else 503)

    async def healthz(request: Request) -> Response:
        return probe(lifecycle.live)

    async def readyz(request: Request) -> Response:
        return probe(lifecycle.ready)

    probes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return [Route("/metrics", scrape, methods=["GET"]), *probes] if with_metrics else probes


async def _not_found(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("not found\n", status_code=404)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handling: the process's own handlers drain every server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        lifecycle: Lifecycle,
        metrics: ServerMetrics,
        routes: Sequence[BaseRoute] = (),
        tls: ssl.SSLContext | None = None,
        health_only: bool = False,
    ):
        """`tls`: serve HTTPS only, with this context (see `services/core/tls.py`);
        `health_only`: /healthz and /readyz, and nothing else (the plain-text health port)."""
        self.app = Starlette(
            routes=[*probe_routes(lifecycle, metrics, not health_only), *routes],
            exception_handlers={404: _not_found},
        )
        self._socket = _bind(host, port)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",  # probes and scrapes every few seconds: no line each
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            ssl_context_factory=None if tls is None else (lambda config, default: tls),
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task | None = None

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    async def start(self) -> None:
        """Serves on the running event loop; returns once the socket accepts connections."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # start-up failed: raise its error
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            self._socket.close()
            return
        self._server.should_exit = True
        await self._task


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
