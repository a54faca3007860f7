"""The diarization service's metrics: a model server's (see services/core/metrics.py) and the
number of speakers it finds (see docs/metrics.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from services.core.metrics import ServiceMetrics

SPEAKER_BUCKETS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20)


class DiarizationMetrics(ServiceMetrics):
    def __init__(self, service: str, registry: CollectorRegistry | None = None):
        super().__init__(service, registry)
        self.speakers = Histogram(
            "stt_diarization_speakers",
            "Speakers found per Diarize request.",
            ["service"],
            buckets=SPEAKER_BUCKETS,
            registry=self.registry,
        )
