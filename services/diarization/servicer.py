"""The stt.v1.Diarization servicer: reads the request, runs the diarizer in an inference slot,
answers with the turns. Readiness, errors and metrics are the core's (`CallScope`)."""

from __future__ import annotations

import time

from stt.v1 import stt_pb2, stt_pb2_grpc

from services.core.calls import Call, CallScope
from services.core.convert import audio_spec, duration
from services.core.errors import InvalidAudio
from services.core.gate import Gate
from services.core.names import DIARIZATION_SERVICE
from services.core.rpc import unary_rpc
from services.core.slots import InferenceSlots
from services.core.speakers import SpeakerBounds, check_bounds
from services.diarization.backend import DiarizationBackend
from services.diarization.diarizer import DiarizationJob, DiarizationResult, Diarizer
from services.diarization.metrics import DiarizationMetrics
from services.diarization.settings import DiarizationSettings

# The metrics' language label: diarization hears any language ("und", undetermined).
ANY_LANGUAGE = "und"


class DiarizationServicer(stt_pb2_grpc.DiarizationServicer):
    api = "stt"
    rpc_service = DIARIZATION_SERVICE
    request_id_of = None

    def __init__(
        self,
        service: str,
        settings: DiarizationSettings,
        backend: DiarizationBackend,
        diarizer: Diarizer,
        gate: Gate,
        calls: CallScope,
        metrics: DiarizationMetrics,
    ):
        self._service = service
        self._settings = settings
        self._backend = backend
        self._diarizer = diarizer
        self._metrics = metrics
        self._slots = InferenceSlots(gate, metrics, service, settings.inference_nice)
        self.calls = calls

    @unary_rpc
    async def Diarize(self, call: Call, request):
        call.language = ANY_LANGUAGE
        job = to_job(request, self._settings)
        result = await self._slots.run(call, self._diarizer.run, job)
        elapsed = time.perf_counter() - call.started
        self._observe(result, elapsed)
        return self._response(result, call.request_id, elapsed)

    def _response(
        self, result: DiarizationResult, request_id: str, elapsed_s: float
    ) -> stt_pb2.DiarizeResponse:
        turns = [
            stt_pb2.SpeakerTurn(
                start_offset=duration(turn.start),
                end_offset=duration(turn.end),
                speaker_label=str(turn.speaker),
            )
            for turn in result.diarization.turns
        ]
        return stt_pb2.DiarizeResponse(
            turns=turns,
            speaker_count=result.diarization.speaker_count,
            audio_duration=duration(result.audio_seconds),
            request_id=request_id,
            service=self._service,
            model=self._backend.info.model,
            processing_time=duration(elapsed_s),
        )

    def _observe(self, result: DiarizationResult, elapsed_s: float) -> None:
        service = self._service
        self._metrics.audio_seconds.labels(service, ANY_LANGUAGE).inc(result.audio_seconds)
        if result.audio_seconds > 0:
            self._metrics.real_time_factor.labels(service).observe(elapsed_s / result.audio_seconds)
        self._metrics.speakers.labels(service).observe(result.diarization.speaker_count)

    def shutdown(self) -> None:
        self._slots.shutdown()


def to_job(request: stt_pb2.DiarizeRequest, settings: DiarizationSettings) -> DiarizationJob:
    source = request.audio.WhichOneof("audio_source")
    if source is None or (source == "content" and not request.audio.content):
        raise InvalidAudio("audio is empty: put the audio bytes in audio.content")
    if source != "content":
        raise InvalidAudio(
            "the diarization service takes the audio bytes in audio.content; audio.uri is read "
            "by LongRunningRecognize only"
        )
    bounds = check_bounds(request.config.diarization_config, settings.max_speakers)
    return DiarizationJob(
        request.audio.content, audio_spec(request.config), resolved(bounds, settings)
    )


def resolved(bounds: SpeakerBounds, settings: DiarizationSettings) -> SpeakerBounds:
    """Bounds with the service's defaults where the request left them 0."""
    low = bounds.min_count or 1
    high = bounds.max_count or max(settings.default_max_speakers, low)
    return SpeakerBounds(low, high)
