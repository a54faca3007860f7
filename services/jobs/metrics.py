"""Every Prometheus metric of the jobs, defined once (see docs/metrics.md).

The router exports the queue as the store holds it (read at each scrape) and counts the jobs it
accepts and cancels; each worker counts the jobs it ends, their latency and audio, lease
expiries, heartbeats and retried chunks.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.core.metrics import ServerMetrics

# From acceptance to the end: seconds for a short clip, hours for a long one behind a queue.
JOB_DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)


def finished_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "stt_jobs_finished",
        "Jobs that ended, by status code (OK, CANCELLED, INVALID_ARGUMENT, ...).",
        ["service", "code"],
        registry=registry,
    )


class QueueMetrics:
    """The router's: the queue, and the jobs it accepts and cancels."""

    def __init__(self, registry: CollectorRegistry):
        self.queued = Gauge(
            "stt_jobs_queued", "Jobs waiting for a worker.", ["service"], registry=registry
        )
        self.running = Gauge(
            "stt_jobs_running", "Jobs a worker holds now.", ["service"], registry=registry
        )
        self.accepted = Counter(
            "stt_jobs_accepted",
            "Jobs LongRunningRecognize accepted, by the API they came through (stt, google).",
            ["service", "api"],
            registry=registry,
        )
        self.finished = finished_counter(registry)


class WorkerMetrics(ServerMetrics):
    def __init__(self, service: str, registry: CollectorRegistry | None = None):
        super().__init__(service, registry)
        r = self.registry
        self.finished = finished_counter(r)
        self.latency = Histogram(
            "stt_job_duration_seconds",
            "Time from a job's acceptance to its end, for the jobs this worker ended.",
            ["service", "code"],
            buckets=JOB_DURATION_BUCKETS,
            registry=r,
        )
        self.audio_seconds = Counter(
            "stt_job_audio_seconds",
            "Seconds of job audio transcribed (divide by 3600 for hours).",
            ["service", "language"],
            registry=r,
        )
        self.lease_expiries = Counter(
            "stt_job_lease_expiries",
            "Jobs this worker took over because their worker stopped renewing its lease.",
            ["service"],
            registry=r,
        )
        self.heartbeats = Counter(
            "stt_worker_heartbeats",
            "Lease renewals, by outcome: renewed, cancelled, lost (taken over or deleted), error.",
            ["service", "outcome"],
            registry=r,
        )
        self.chunk_retries = Counter(
            "stt_job_chunk_retries",
            "Chunk Recognize calls refused and tried again, by status code.",
            ["service", "code"],
            registry=r,
        )
        self.busy = Gauge(
            "stt_worker_busy", "1 while the worker runs a job, else 0.", ["service"], registry=r
        )
