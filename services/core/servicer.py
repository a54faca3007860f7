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
from dataclasses import replace

import grpc
from opentelemetry import trace
from stt.v1 import stt_pb2, stt_pb2_grpc

import services
from services.core import convert, languages, tracing
from services.core.backend import Backend, Cancellation
from services.core.endpointer import EndpointSettings
from services.core.errors import InvalidConfig, SttError, to_grpc_status
from services.core.gate import Gate
from services.core.health import Lifecycle, State
from services.core.logs import request_id_var, trace_id_var
from services.core.metrics import ServiceMetrics
from services.core.recognizer import Recognition, RecognitionJob, Recognizer
from services.core.settings import ServiceSettings
from services.core.stream_audio import stream_decoder
from services.core.streaming import Final, StreamSession, StreamSettings

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
        self._stream_settings = StreamSettings(
            EndpointSettings(
                threshold=settings.vad_threshold,
                end_silence_ms=settings.stream_endpoint_silence_ms,
                pad_ms=settings.vad_speech_pad_ms,
            ),
            interim_interval_s=settings.stream_interim_interval_s,
            max_utterance_s=min(settings.stream_max_utterance_s, backend.max_chunk_seconds),
            max_stream_s=settings.stream_max_seconds,
        )

    async def Recognize(self, request, context):
        return await self._handle(
            "Recognize",
            request.config.language_code,
            context,
            lambda scope: self._recognize(request, context, scope),
        )

    async def _recognize(self, request, context, scope: _Scope) -> stt_pb2.RecognizeResponse:
        self._lifecycle.require_ready()
        info = self._backend.info
        job = convert.to_job(request, info.languages, self._service, self._settings.vad_enabled)
        # Hashing megabytes of audio would stall the event loop: do it on a thread.
        cached = await asyncio.to_thread(self._recognizer.cached, job)
        recognition = cached or await self._infer(job, context)
        response = convert.to_response(
            recognition,
            request.config,
            request_id=scope.request_id,
            model=info.model,
            service=self._service,
            processing_s=scope.elapsed_s(),
        )
        scope.language = response.language_code or scope.language
        self._observe_success(recognition, scope.elapsed_s())
        context.set_trailing_metadata((("x-request-id", scope.request_id),))
        return response

    async def _handle(self, method: str, language: str, context, work):
        """Runs `work(scope)` as one request: span, ids, error mapping, metrics, access log."""
        with self._request_scope(method, language, context) as scope:
            try:
                return await work(scope)
            except SttError as error:
                scope.code = error.code
                self._count_rejection(error)
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
                self._observe_request(method, scope)

    def _count_rejection(self, error: SttError) -> None:
        reasons = {
            grpc.StatusCode.RESOURCE_EXHAUSTED: "overloaded",
            grpc.StatusCode.UNAVAILABLE: "not_ready",
        }
        if error.code in reasons:
            self._metrics.rejections.labels(self._service, reasons[error.code]).inc()

    def _observe_request(self, method: str, scope: _Scope) -> None:
        elapsed = scope.elapsed_s()
        self._metrics.requests.labels(self._service, method, scope.language, scope.code.name).inc()
        self._metrics.latency.labels(self._service, method).observe(elapsed)
        log.info(
            "request finished",
            extra={
                "method": method,
                "code": scope.code.name,
                "language": scope.language,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )

    async def StreamingRecognize(self, request_iterator, context):
        await self._handle(
            "StreamingRecognize",
            "",
            context,
            lambda scope: self._stream(aiter(request_iterator), context, scope),
        )

    async def _stream(self, requests, context, scope: _Scope) -> None:
        self._lifecycle.require_ready()
        streaming, spec, options = convert.to_stream_setup(
            await anext(requests, None), self._backend.info.languages, self._service
        )
        scope.language = languages.metric_label(options.language or "")
        if not options.beam_size:  # a live stream favours latency over the last bit of accuracy
            options = replace(options, beam_size=self._settings.stream_beam_size)
        decoder = stream_decoder(spec, self._settings.stream_max_buffer_bytes)
        events: asyncio.Queue = asyncio.Queue()
        session = StreamSession(
            lambda audio, opts: self._in_slot(context, self._backend.transcribe, audio, opts),
            options,
            self._stream_settings,
            events.put_nowait,
            interim_results=streaming.interim_results,
            single_utterance=streaming.single_utterance,
        )
        writer = asyncio.create_task(self._send_events(events, streaming, context, scope))
        self._metrics.active_streams.labels(self._service).inc()
        try:
            await self._feed(requests, decoder, session)
            events.put_nowait(None)
            await writer  # every event out before the call ends
        finally:
            # On failure or cancellation the client may never read again: stop writing.
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            await session.cancel()
            decoder.abandon()
            self._metrics.active_streams.labels(self._service).dec()
            self._metrics.stream_duration.labels(self._service).observe(scope.elapsed_s())

    async def _feed(self, requests, decoder, session: StreamSession) -> None:
        """Audio messages into the session until the client half-closes or the utterance
        of a single-utterance stream ends."""
        async for message in requests:
            if message.WhichOneof("streaming_request") != "audio_content":
                raise InvalidConfig("streaming_config may only be sent once, in the first message")
            await session.push(decoder.feed(message.audio_content))
            if session.closed:
                return
        await session.push(decoder.close())
        await session.finish()

    async def _send_events(self, events: asyncio.Queue, streaming, context, scope) -> None:
        while (event := await events.get()) is not None:
            response = convert.event_response(event, streaming)
            if isinstance(event, Final) and event.latency_s is not None:
                self._metrics.final_latency.labels(self._service).observe(event.latency_s)
            if response is None:
                continue
            if response.results and not response.results[0].is_final:
                self._metrics.interim_results.labels(self._service).inc()
            response.request_id = scope.request_id
            await context.write(response)

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
            streaming_supported=True,
            max_stream_seconds=self._settings.stream_max_seconds,
        )

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _infer(self, job: RecognitionJob, context) -> Recognition:
        return await self._in_slot(context, self._recognizer.run, job)

    async def _in_slot(self, context, work, *args):
        """Runs `work(*args, cancellation)` on a worker thread while holding a gate slot."""
        remaining = context.time_remaining()
        await self._gate.acquire(remaining)
        self._update_gauges()
        deadline = time.monotonic() + remaining if remaining is not None else None
        cancellation = Cancellation(deadline)
        held_since = time.monotonic()
        run = contextvars.copy_context().run  # the worker logs and traces as this request
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, run, work, *args, cancellation)

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
    def _request_scope(self, method: str, language: str, context) -> Iterator[_Scope]:
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
            scope = _Scope(request_id, languages.metric_label(language))
            try:
                yield scope
            finally:
                span.set_attribute("rpc.grpc.status_code", scope.code.value[0])
                trace_id_var.reset(tokens[1])
                request_id_var.reset(tokens[0])


class _Scope:
    """One request as the servicer tracks it."""

    def __init__(self, request_id: str, language: str):
        self.request_id = request_id
        self.language = language  # as asked; the language used, once known
        self.code = grpc.StatusCode.OK
        self._started = time.perf_counter()

    def elapsed_s(self) -> float:
        return time.perf_counter() - self._started


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
