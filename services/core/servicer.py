"""The stt.v1.Speech servicer: translates messages, enforces the gate, maps errors, measures.

Every language service runs this same class; what differs is the backend behind the recognizer.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

import services
from services.core import convert
from services.core.backend import Backend, Cancellation
from services.core.errors import SttError, Unimplemented, to_grpc_status
from services.core.gate import Gate
from services.core.health import Lifecycle, State
from services.core.metrics import ServiceMetrics
from services.core.recognizer import Recognition, RecognitionJob, Recognizer
from services.core.requests import REQUEST_ID_HEADER, RequestScope, abandoned_code, request_scope
from services.core.settings import ServiceSettings

log = logging.getLogger("stt.servicer")
T = TypeVar("T")
# Lifecycle states as GetServiceInfo reports them.
INFO_STATES = {
    State.STARTING: stt_pb2.ServiceInfo.STARTING,
    State.SERVING: stt_pb2.ServiceInfo.SERVING,
    State.DRAINING: stt_pb2.ServiceInfo.DRAINING,
    State.FAILED: stt_pb2.ServiceInfo.STATE_UNSPECIFIED,
}


class SpeechServicer(stt_pb2_grpc.SpeechServicer):
    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        backend: Backend,
        recognizer: Recognizer,
        gate: Gate,
        lifecycle: Lifecycle,
        metrics: ServiceMetrics,
    ):
        self._service = service
        self._settings = settings
        self._backend = backend
        self._recognizer = recognizer
        self._gate = gate
        self._lifecycle = lifecycle
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(settings.max_concurrency, "inference")

    async def Recognize(self, request, context):
        language = request.config.language_code
        return await self._answer("Recognize", language, self._recognize, request, context)

    async def DetectLanguage(self, request, context):
        return await self._answer("DetectLanguage", "", self._detect, request, context)

    async def _recognize(self, request, context, scope: RequestScope, started: float):
        job = convert.to_job(
            request, self._backend.info.languages, self._service, self._settings.vad_enabled
        )
        recognition = self._recognizer.cached(job) or await self._in_slot(
            self._recognizer.run, job, context
        )
        response = convert.to_response(
            recognition,
            request.config,
            request_id=scope.request_id,
            model=self._backend.info.model,
            service=self._service,
            processing_s=time.perf_counter() - started,
        )
        self._observe_success(recognition, time.perf_counter() - started)
        return response, response.language_code

    async def _detect(self, request, context, scope: RequestScope, started: float):
        job = convert.to_detection_job(request, self._settings.vad_enabled)
        detection = await self._in_slot(self._recognizer.detect, job, context)
        response = stt_pb2.DetectLanguageResponse(
            language_code=detection.language,
            language_probability=detection.probability,
            request_id=scope.request_id,
            service=self._service,
            model=self._backend.info.model,
            processing_time=convert.duration(time.perf_counter() - started),
        )
        return response, detection.language or "unknown"

    async def _answer(self, method: str, language: str, handler, request, context):
        """Serves one unary call: scope, readiness, error mapping and metrics around `handler`,
        which returns the response and the language to count it under."""
        started = time.perf_counter()
        language = language or "detect"
        refusal = None
        with request_scope(method, context, self._service) as scope:
            try:
                self._lifecycle.require_ready()
                response, language = await handler(request, context, scope, started)
                context.set_trailing_metadata(((REQUEST_ID_HEADER, scope.request_id),))
                return response
            except SttError as error:
                scope.code = error.code
                self._count_rejection(error)
                log.info(
                    "request refused", extra={"code": error.code.name, "reason": error.message}
                )
                refusal = to_grpc_status(error, scope.request_id)
            except asyncio.CancelledError:
                scope.code = abandoned_code(context)
                raise
            except Exception as error:
                scope.code = grpc.StatusCode.INTERNAL
                log.exception("request failed")
                refusal = to_grpc_status(error, scope.request_id)
            finally:
                code = scope.code.name
                self._metrics.requests.labels(self._service, method, language, code).inc()
                self._metrics.latency.labels(self._service, method).observe(
                    time.perf_counter() - started
                )
        # Answered only now, so whoever reads the metrics after the refusal finds it counted.
        await context.abort_with_status(refusal)

    def _count_rejection(self, error: SttError) -> None:
        if error.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            self._metrics.rejections.labels(self._service, "overloaded").inc()
        elif error.code is grpc.StatusCode.UNAVAILABLE:
            self._metrics.rejections.labels(self._service, "not_ready").inc()

    async def StreamingRecognize(self, request_iterator, context):
        with request_scope("StreamingRecognize", context, self._service) as scope:
            scope.code = grpc.StatusCode.UNIMPLEMENTED
            error = Unimplemented(
                f"{self._service} does not implement StreamingRecognize yet; "
                "send the whole clip with Recognize"
            )
            await context.abort_with_status(to_grpc_status(error, scope.request_id))

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
            streaming_supported=False,
        )

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _in_slot(self, work: Callable[[RecognitionJob, Cancellation], T], job, context) -> T:
        """Runs `work(job, cancellation)` in a worker thread while holding an inference slot."""
        remaining = context.time_remaining()
        await self._gate.acquire(remaining)
        self._update_gauges()
        deadline = time.monotonic() + remaining if remaining is not None else None
        cancellation = Cancellation(deadline)
        held_since = time.monotonic()
        run = contextvars.copy_context().run  # the worker logs and traces as this request
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, run, work, job, cancellation)

        def free_slot(_future) -> None:
            # Runs when the worker has really stopped, not when the client gave up.
            self._gate.release(time.monotonic() - held_since)
            self._update_gauges()

        future.add_done_callback(free_slot)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancellation.cancel()
            future.add_done_callback(_consume_result)
            raise

    def _observe_success(self, recognition: Recognition, elapsed_s: float) -> None:
        language = recognition.transcript.language or "unknown"
        self._metrics.audio_seconds.labels(self._service, language).inc(recognition.audio_seconds)
        if recognition.audio_seconds > 0:
            self._metrics.real_time_factor.labels(self._service).observe(
                elapsed_s / recognition.audio_seconds
            )

    def _update_gauges(self) -> None:
        self._metrics.in_flight.labels(self._service).set(self._gate.in_flight)
        self._metrics.queued.labels(self._service).set(self._gate.queued)

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


def _consume_result(future) -> None:
    """Reads the outcome of an abandoned inference so asyncio does not report it as lost."""
    if not future.cancelled():
        future.exception()
