"""A job worker's metrics (see docs/metrics.md): the jobs it ends, their latency and audio,
lease expiries, heartbeats and retried calls."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.core.metrics import ServerMetrics
from services.jobs.metrics import finished_counter

# From acceptance to the end: seconds for a short clip, hours for a long one behind a queue.
JOB_DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)


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
