"""The stt.v1.Speech servicer: translates messages, enforces the gate, maps errors, measures.

Every language service runs this same class; what differs is the backend behind the recognizer.
"""

from __future__ import annotations

import asyncio
import time

from stt.v1 import stt_pb2, stt_pb2_grpc

import services
from services.core import convert, languages
from services.core.backend import Backend
from services.core.batching import Batcher, BatchLimits
from services.core.calls import Call, CallScope
from services.core.gate import Gate
from services.core.health import Lifecycle, State
from services.core.metrics import ServiceMetrics
from services.core.names import SPEECH_SERVICE
from services.core.recognizer import Recognition, Recognizer
from services.core.rpc import stream_rpc, unary_rpc
from services.core.settings import ServiceSettings
from services.core.slots import InferenceSlots
from services.core.stream_servicer import StreamServicer

# Lifecycle states as GetServiceInfo reports them.
INFO_STATES = {
    State.STARTING: stt_pb2.ServiceInfo.STARTING,
    State.SERVING: stt_pb2.ServiceInfo.SERVING,
    State.DRAINING: stt_pb2.ServiceInfo.DRAINING,
    State.FAILED: stt_pb2.ServiceInfo.STATE_UNSPECIFIED,
}


class SpeechServicer(stt_pb2_grpc.SpeechServicer):
    api = "stt"
    rpc_service = SPEECH_SERVICE
    request_id_of = None

    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        backend: Backend,
        recognizer: Recognizer,
        gate: Gate,
        calls: CallScope,
        lifecycle: Lifecycle,
        metrics: ServiceMetrics,
        batcher: Batcher | None = None,
    ):
        self._service = service
        self._settings = settings
        self._backend = backend
        self._recognizer = recognizer
        self._gate = gate
        self._lifecycle = lifecycle
        self._metrics = metrics
        self._slots = InferenceSlots(gate, metrics, service, settings.inference_nice)
        self._caching = settings.cache_size > 0
        self._streams = StreamServicer(
            service, settings, backend, self._slots, metrics, batcher or Batcher(BatchLimits())
        )
        self.calls = calls

    @unary_rpc
    async def Recognize(self, call: Call, request):
        call.language = languages.metric_label(request.config.language_code)
        job = convert.to_job(
            request, self._backend.info.languages, self._service, self._settings.vad_enabled
        )
        self._backend.check(job.options)
        # Hashing megabytes of audio would stall the event loop: do it on a thread, and only
        # when there is a cache to look in.
        cached = await asyncio.to_thread(self._recognizer.cached, job) if self._caching else None
        recognition = cached or await self._slots.run(call, self._recognizer.run, job)
        response = convert.to_response(
            recognition,
            request.config,
            request_id=call.request_id,
            model=self._backend.info.model,
            service=self._service,
            processing_s=time.perf_counter() - call.started,
        )
        self._observe_success(recognition, time.perf_counter() - call.started)
        call.language = response.language_code
        return response

    @unary_rpc
    async def DetectLanguage(self, call: Call, request):
        job = convert.to_detection_job(
            request, self._settings.vad_enabled, self._backend.info.languages, self._service
        )
        detection = await self._slots.run(call, self._recognizer.detect, job)
        call.language = detection.language or "unknown"
        found = detection.language
        if found and request.config.alternative_language_codes:
            found = convert.candidate_code(found, request.config)
        return stt_pb2.DetectLanguageResponse(
            language_code=found,
            language_probability=detection.probability,
            request_id=call.request_id,
            service=self._service,
            model=self._backend.info.model,
            processing_time=convert.duration(time.perf_counter() - call.started),
        )

    @stream_rpc
    async def StreamingRecognize(self, call: Call, requests):
        async for response in self._streams.serve(call, requests):
            yield response

    async def GetServiceInfo(self, request, context):
        info = self._backend_info()
        return stt_pb2.ServiceInfo(
            service=self._service,
            version=services.__version__,
            language_codes=info["languages"],
            model=info["model"],
            device=info["device"],
            precision=info["precision"],
            max_concurrency=self._gate.max_concurrency,
            max_queue=self._gate.max_queue,
            ready=self._lifecycle.ready,
            state=INFO_STATES[self._lifecycle.state],
            max_audio_seconds=self._settings.max_audio_seconds,
            max_audio_bytes=self._settings.max_audio_bytes,
            streaming_supported=True,
            max_stream_seconds=self._settings.stream_max_seconds,
        )

    def shutdown(self) -> None:
        self._slots.shutdown()

    def _observe_success(self, recognition: Recognition, elapsed_s: float) -> None:
        language = recognition.transcript.language or "unknown"
        self._metrics.audio_seconds.labels(self._service, language).inc(recognition.audio_seconds)
        if recognition.audio_seconds > 0:
            self._metrics.real_time_factor.labels(self._service).observe(
                elapsed_s / recognition.audio_seconds
            )

    def _backend_info(self) -> dict:
        if self._lifecycle.state in (State.STARTING, State.FAILED):
            return {
                "model": self._settings.model,
                "device": self._settings.device,
                "precision": self._settings.compute_type,
                "languages": [],
            }
        info = self._backend.info
        return {
            "model": info.model,
            "device": info.device,
            "precision": info.precision,
            "languages": list(info.languages),
        }
