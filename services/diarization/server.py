"""Hosts a diarization backend as stt.v1.Diarization on the serving core: the same gate,
health (NOT_SERVING until loaded and warmed up, and while draining), probes, metrics,
traces, reflection and drain as every language service."""

from __future__ import annotations

import grpc
from stt.v1 import stt_pb2_grpc

from services.core.audio import AudioLimits
from services.core.names import DIARIZATION_SERVICE
from services.core.server import ModelServer
from services.diarization.backend import DiarizationBackend
from services.diarization.diarizer import Diarizer
from services.diarization.metrics import DiarizationMetrics
from services.diarization.servicer import DiarizationServicer
from services.diarization.settings import DiarizationSettings


class DiarizationServer(ModelServer):
    grpc_service = DIARIZATION_SERVICE

    def __init__(self, service: str, settings: DiarizationSettings, backend: DiarizationBackend):
        super().__init__(service, settings, backend, DiarizationMetrics(service))
        limits = AudioLimits(settings.max_audio_bytes, settings.max_audio_seconds)
        diarizer = Diarizer(backend, self.vad, limits, self.metrics)
        self.servicer = DiarizationServicer(
            service, settings, backend, diarizer, self.gate, self.calls, self.metrics
        )

    def add_servicer(self, server: grpc.aio.Server) -> None:
        stt_pb2_grpc.add_DiarizationServicer_to_server(self.servicer, server)
