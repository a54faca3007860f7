"""Every Prometheus metric a language service exports, defined once (see docs/metrics.md).

Each server owns a registry, so several servers in one process (tests, benchmarks) keep their
counts apart; every series carries the `service` label. `ServerMetrics` holds what every server
exports, the router included; `ServiceMetrics` adds a language service's own.
"""

from __future__ import annotations

import sys
from typing import Protocol

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.core.errors import SttError

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
RTF_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class CallLabels(Protocol):
    """What the metrics read of a call (`services.core.calls.Call`)."""

    method: str
    language: str

    @property
    def api(self) -> str: ...


class ServerMetrics:
    def __init__(self, service: str, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.service = service
        self.ready = Gauge(
            "stt_ready",
            "1 when the server accepts requests, else 0.",
            ["service"],
            registry=self.registry,
        )

    def before_scrape(self) -> None:
        """Refreshes values that are read, not counted; called by /metrics before it renders."""


class ServiceMetrics(ServerMetrics):
    def __init__(self, service: str, registry: CollectorRegistry | None = None):
        super().__init__(service, registry)
        r = self.registry
        self.requests = Counter(
            "stt_requests",
            "Finished requests.",
            ["service", "method", "language", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "stt_request_duration_seconds",
            "Time from request arrival to answer.",
            ["service", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "stt_stage_duration_seconds",
            "Time spent in each stage of a request.",
            ["service", "stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.audio_seconds = Counter(
            "stt_audio_seconds",
            "Seconds of audio recognised.",
            ["service", "language"],
            registry=r,
        )
        self.real_time_factor = Histogram(
            "stt_real_time_factor",
            "Processing time divided by audio duration, per request.",
            ["service"],
            buckets=RTF_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "stt_inflight_requests", "Inferences running now.", ["service"], registry=r
        )
        self.queued = Gauge(
            "stt_queued_requests",
            "Requests waiting for an inference slot.",
            ["service"],
            registry=r,
        )
        self.rejections = Counter(
            "stt_rejections",
            "Requests refused before inference.",
            ["service", "reason"],
            registry=r,
        )
        self.cache_hits = Counter("stt_cache_hits", "Result cache hits.", ["service"], registry=r)
        self.cache_misses = Counter(
            "stt_cache_misses", "Result cache misses.", ["service"], registry=r
        )
        self.model_load_seconds = Gauge(
            "stt_model_load_seconds",
            "Time taken to load the model.",
            ["service", "model"],
            registry=r,
        )
        self.warmup_seconds = Gauge(
            "stt_model_warmup_seconds",
            "Time taken by the warm-up inference.",
            ["service", "model"],
            registry=r,
        )
        self.active_streams = Gauge(
            "stt_active_streams", "StreamingRecognize calls open now.", ["service"], registry=r
        )
        self.stream_duration = Histogram(
            "stt_stream_duration_seconds",
            "Wall time a stream stayed open.",
            ["service"],
            buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=r,
        )
        self.final_latency = Histogram(
            "stt_stream_final_latency_seconds",
            "Time from the arrival of the end of speech to its final result.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.interim_results = Counter(
            "stt_stream_interim_results", "Interim results sent.", ["service"], registry=r
        )
        self.gpu_memory = Gauge(
            "stt_gpu_memory_bytes",
            "GPU memory held by this process, and the card's total (CUDA only).",
            ["service", "kind"],
            registry=r,
        )
        self.info = Gauge(
            "stt_service_info",
            "Constant 1, labelled with what the service runs.",
            ["service", "version", "model", "device", "precision"],
            registry=r,
        )

    def call_finished(self, call: CallLabels, code: grpc.StatusCode, elapsed_s: float) -> None:
        self.requests.labels(self.service, call.method, call.language, code.name).inc()
        self.latency.labels(self.service, call.method).observe(elapsed_s)

    def call_refused(self, call: CallLabels, error: SttError) -> None:
        if error.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            self.rejections.labels(self.service, "overloaded").inc()
        elif error.code is grpc.StatusCode.UNAVAILABLE:
            self.rejections.labels(self.service, "not_ready").inc()

    def before_scrape(self) -> None:
        self.sample_gpu_memory()

    def sample_gpu_memory(self) -> None:
        """Reads torch's CUDA allocator, when a backend has torch on a GPU (read at scrape)."""
        torch = sys.modules.get("torch")  # never import torch just to find it absent
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return
        self.gpu_memory.labels(self.service, "allocated").set(torch.cuda.memory_allocated())
        self.gpu_memory.labels(self.service, "reserved").set(torch.cuda.memory_reserved())
        # The card's size, so that an alert can compare what is held with the share allowed.
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        self.gpu_memory.labels(self.service, "total").set(total)
