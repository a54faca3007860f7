"""The HTTP side of a service: /metrics for Prometheus, /healthz (live) and /readyz (ready).

A small threaded server from the standard library, so probes and scrapes answer at once even
while every inference slot is busy.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.core.health import Lifecycle
from services.core.metrics import ServerMetrics


class ProbeServer:
    def __init__(self, host: str, port: int, lifecycle: Lifecycle, metrics: ServerMetrics):
        handler = _handler_class(lifecycle, metrics)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-probes", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(lifecycle: Lifecycle, metrics: ServerMetrics):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                metrics.before_scrape()
                self._send(HTTPStatus.OK, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._probe(lifecycle.live)
            elif path == "/readyz":
                self._probe(lifecycle.ready)
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

        def _probe(self, ok: bool) -> None:
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            body = f"{lifecycle.state.value}\n".encode()
            self._send(status, body, "text/plain")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            """Probes and scrapes arrive every few seconds: not worth a log line each."""

    return Handler
