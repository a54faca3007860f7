"""Every Prometheus metric the router exports, defined once (see docs/metrics.md).

`language` is the route's pattern (`en`, `ha`, `*`), `detect` before a language is known and
`unknown` for a code no route matches, so clients' spellings of a code never multiply series.
`api` is the API a request came through: `stt` (stt.v1), `google`, `google_v1p1beta1`,
`google_v2`, `riva` or `openai`; its `method` is the stt.v1 call it became (`Recognize`,
`StreamingRecognize`, `DetectLanguage`, `LongRunningRecognize`, and `Diarize` relayed to the
diarization service for the job workers).
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.core.errors import Relayed, SttError
from services.core.metrics import CallLabels, ServerMetrics
from services.jobs.metrics import QueueMetrics

# Finer than a language service's: the router's own share of a request is a millisecond or less.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
)


class RouterMetrics(ServerMetrics):
    def __init__(self, service: str, registry: CollectorRegistry | None = None):
        super().__init__(service, registry)
        r = self.registry
        self.requests = Counter(
            "stt_router_requests",
            "Requests the router finished, by the API they came through and the status its "
            "client got.",
            ["service", "api", "method", "language", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "stt_router_request_duration_seconds",
            "Time from a request's arrival at the router to its answer.",
            ["service", "api", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "stt_router_attempts",
            "Calls the router made to backends, by backend and the status it answered.",
            ["service", "method", "language", "backend", "code"],
            registry=r,
        )
        self.failovers = Counter(
            "stt_router_failovers",
            "Backend refusals after which the router tried another backend or replica.",
            ["service", "method", "language", "backend", "code"],
            registry=r,
        )
        self.rejections = Counter(
            "stt_router_rejections",
            "Requests the router itself refused, by reason.",
            ["service", "api", "method", "language", "reason"],
            registry=r,
        )
        self.detections = Counter(
            "stt_router_detections",
            "Languages detected for requests that gave none.",
            ["service", "language"],
            registry=r,
        )
        self.backend_up = Gauge(
            "stt_router_backend_up",
            "1 while a backend's health check says SERVING, else 0.",
            ["service", "backend"],
            registry=r,
        )
        self.language_up = Gauge(
            "stt_router_language_up",
            "1 while at least one backend of a route is serving, else 0.",
            ["service", "language"],
            registry=r,
        )
        self.jobs = QueueMetrics(r)
        # Reads the job queue's size from the store at each scrape, when the router has one.
        self.sample_queue: Callable[[], None] | None = None

    def call_finished(self, call: CallLabels, code: grpc.StatusCode, elapsed_s: float) -> None:
        self.requests.labels(self.service, call.api, call.method, call.language, code.name).inc()
        self.latency.labels(self.service, call.api, call.method).observe(elapsed_s)

    def call_refused(self, call: CallLabels, error: SttError) -> None:
        if isinstance(error, Relayed):
            return  # the backend's answer, counted as an attempt
        reason = error.reason.lower()
        self.rejections.labels(self.service, call.api, call.method, call.language, reason).inc()

    def before_scrape(self) -> None:
        if self.sample_queue is not None:
            self.sample_queue()
