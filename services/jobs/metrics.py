"""The job metrics the router exports (see docs/metrics.md): the queue as the store holds it
(read at each scrape), and the jobs it accepts and cancels. A worker's own are in
`services/jobs/worker/metrics.py`; both count ended jobs in `stt_jobs_finished`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


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
