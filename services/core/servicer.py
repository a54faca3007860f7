"""The stt.v1.Speech servicer: translates messages, enforces the gate, maps errors, measures.

Every language service runs this same class; what differs is the backend behind the recognizer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
from opentelemetry import trace
from stt.v1 import stt_pb2, stt_pb2_grpc

import services
from services.core import convert, tracing
from services.core.backend import Backend, Cancellation
from services.core.errors import SttError, Unimplemented, to_grpc_status
from services.core.gate import Gate
from services.core.health import Lifecycle, State
from services.core.logs import request_id_var, trace_id_var
from services.core.metrics import ServiceMetrics
from services.core.recognizer import Recognition, RecognitionJob, Recognizer
from services.core.settings import ServiceSettings

log = logging.getLogger("stt.servicer")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STATES = {
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
        started = time.perf_counter()
        language = request.config.language_code or "detect"
        with self._request_scope("Recognize", context) as scope:
            try:
                self._lifecycle.require_ready()
                job = convert.to_job(
                    request, self._backend.info.languages, self._service, self._settings.vad_enabled
                )
                self._backend.check(job.options)
                recognition = self._recognizer.cached(job) or await self._infer(job, context)
                response = convert.to_response(
                    recognition,
                    request.config,
                    request_id=scope.request_id,
                    model=self._backend.info.model,
                    service=self._service,
                    processing_s=time.perf_counter() - started,
                )
                language = response.language_code or language
                self._observe_success(recognition, time.perf_counter() - started)
                context.set_trailing_metadata((("x-request-id", scope.request_id),))
                return response
            except SttError as error:
                scope.code = error.code
                if error.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                    self._metrics.rejections.labels(self._service, "overloaded").inc()
                elif error.code is grpc.StatusCode.UNAVAILABLE:
                    self._metrics.rejections.labels(self._service, "not_ready").inc()
                log.info(
                    "request refused", extra={"code": error.code.name, "reason": error.message}
                )
                await context.abort_with_status(to_grpc_status(error, scope.request_id))
            except asyncio.CancelledError:
                scope.code = _abandoned_code(context)
                raise
            except Exception as error:
                scope.code = grpc.StatusCode.INTERNAL
                log.exception("request failed")
                await context.abort_with_status(to_grpc_status(error, scope.request_id))
            finally:
                self._metrics.requests.labels(
                    self._service, "Recognize", language, scope.code.name
                ).inc()
                self._metrics.latency.labels(self._service, "Recognize").observe(
                    time.perf_counter() - started
                )

    async def StreamingRecognize(self, request_iterator, context):
        with self._request_scope("StreamingRecognize", context) as scope:
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
            state=_STATES[self._lifecycle.state],
            max_audio_seconds=self._settings.max_audio_seconds,
            max_audio_bytes=self._settings.max_audio_bytes,
            streaming_supported=False,
        )

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _infer(self, job: RecognitionJob, context) -> Recognition:
        remaining = context.time_remaining()
        await self._gate.acquire(remaining)
        self._update_gauges()
        deadline = time.monotonic() + remaining if remaining is not None else None
        cancellation = Cancellation(deadline)
        held_since = time.monotonic()
        run = contextvars.copy_context().run  # the worker logs and traces as this request
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, run, self._recognizer.run, job, cancellation)

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

    @contextlib.contextmanager
    def _request_scope(self, method: str, context) -> Iterator[_Scope]:
        metadata = context.invocation_metadata() or ()
        sent_id = next((v for k, v in metadata if k == "x-request-id"), "")
        request_id = sent_id if _REQUEST_ID.match(sent_id or "") else uuid.uuid4().hex
        parent = tracing.extract(metadata)
        with tracing.tracer.start_as_current_span(
            f"stt.v1.Speech/{method}", context=parent, kind=trace.SpanKind.SERVER
        ) as span:
            span.set_attribute("stt.request_id", request_id)
            span.set_attribute("stt.service", self._service)
            tokens = (
                request_id_var.set(request_id),
                trace_id_var.set(tracing.trace_id_hex(span)),
            )
            scope = _Scope(request_id)
            try:
                yield scope
            finally:
                span.set_attribute("rpc.grpc.status_code", scope.code.value[0])
                trace_id_var.reset(tokens[1])
                request_id_var.reset(tokens[0])


class _Scope:
    def __init__(self, request_id: str):
        self.request_id = request_id
        self.code = grpc.StatusCode.OK


def _abandoned_code(context) -> grpc.StatusCode:
    """Why a call ended early: its deadline passed, or the client cancelled it."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


def _consume_result(future) -> None:
    """Reads the outcome of an abandoned inference so asyncio does not report it as lost."""
    if not future.cancelled():
        future.exception()
