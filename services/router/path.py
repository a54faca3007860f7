"""The router's one request path, shared by every API it speaks.

stt.v1, Google Cloud Speech v1, NVIDIA Riva ASR and the OpenAI audio API are front ends: each
turns its request into an stt.v1 request and comes here, to the same readiness check,
language detection, routing, failover, stream relay, metrics and trace; then it turns the
answer, or the `Refused` error, back into its own dialect.

A request without a language is first sent to the detector backend's DetectLanguage, then
routed by the language found; its response then carries that language and its probability.
A front end may instead pin a request to one backend by name (the model names the OpenAI
and Riva APIs accept). The client's deadline (a default one when there is none) goes to the
backend with a request id and the trace context; a backend's own refusals are relayed as
they are. A Recognize that asks for speaker diarization also goes to the diarization service
(see `speakers.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from stt.v1 import stt_pb2

from services.core.errors import InvalidArgument, Relayed, SttError
from services.core.requests import open_scope
from services.router import speakers
from services.router.config import normalise
from services.router.failover import Call, Failover
from services.router.health import RouterLifecycle
from services.router.metrics import RouterMetrics
from services.router.pool import BackendPool
from services.router.routing import RoutingTable
from services.router.settings import RouterSettings
from services.router.streaming import ClientMessages, StreamRelay

log = logging.getLogger("stt.router")
ROUTER = "router"


@dataclass(frozen=True)
class Incoming:
    """How a request arrived, whatever its API."""

    api: str  # "stt", "google", "riva" or "openai": a metrics label and span attribute
    span_name: str  # the call as its API names it, e.g. "google.cloud.speech.v1.Speech/Recognize"
    metadata: tuple[tuple[str, str], ...]  # gRPC metadata or HTTP headers, lower-case keys
    remaining_s: float | None  # until the client's deadline; None: it set none

    @classmethod
    def from_grpc(cls, api: str, span_name: str, context) -> Incoming:
        metadata = tuple(
            (k, v) for k, v in context.invocation_metadata() or () if isinstance(v, str)
        )
        return cls(api, span_name, metadata, context.time_remaining())


class Refused(Exception):
    """A request the router answered with an error: `error` says which, in stt.v1 terms, and
    the request's metrics already count it."""

    def __init__(self, error: SttError, request_id: str):
        super().__init__(error.message)
        self.error = error
        self.request_id = request_id


class RequestPath:
    def __init__(
        self,
        settings: RouterSettings,
        table: RoutingTable,
        pool: BackendPool,
        lifecycle: RouterLifecycle,
        metrics: RouterMetrics,
    ):
        self.settings = settings
        self.table = table
        self.pool = pool
        self.lifecycle = lifecycle
        self._metrics = metrics
        self._failover = Failover(pool, settings, metrics)
        self._streams = StreamRelay(self._failover, settings.max_streams)
        self._speakers = speakers.SpeakerLabels(table, self._failover)
        self.in_flight = 0

    @property
    def backends(self) -> list[str]:
        """The names a request may be pinned to."""
        return sorted(self.table.backends)

    async def recognize(
        self, call: Call, request: stt_pb2.RecognizeRequest, backend: str | None = None
    ) -> stt_pb2.RecognizeResponse:
        if speakers.wanted(request.config):
            return await self._speakers.recognize(
                request, call, lambda words, c: self._transcribe(c, words, backend)
            )
        return await self._transcribe(call, request, backend)

    async def _transcribe(
        self, call: Call, request: stt_pb2.RecognizeRequest, backend: str | None
    ) -> stt_pb2.RecognizeResponse:
        probability = None
        if backend is None and not request.config.language_code.strip():
            detected = await self.detect(call, request)
            request.config.language_code = detected.language_code
            probability = detected.language_probability
        chain = self._chain(request.config.language_code, call, probability is not None, backend)
        response = await self._failover.call(
            call,
            chain,
            lambda b, timeout: b.speech.Recognize(request, timeout=timeout, metadata=call.metadata),
        )
        if probability is not None:
            response.language_probability = probability
        return response

    async def detect(self, call: Call, request) -> stt_pb2.DetectLanguageResponse:
        """The detector's DetectLanguage for the audio of `request` (any request with a
        config and audio)."""
        detector = self._detector_chain()
        detection = stt_pb2.DetectLanguageRequest(config=request.config, audio=request.audio)
        response = await self._failover.call(
            call,
            detector,
            lambda b, timeout: b.speech.DetectLanguage(
                detection, timeout=timeout, metadata=call.metadata
            ),
        )
        language = response.language_code or "none"
        self._metrics.detections.labels(self._metrics.service, language).inc()
        return response

    async def stream(
        self,
        call: Call,
        first: stt_pb2.StreamingRecognizeRequest | None,
        rest: AsyncIterator[stt_pb2.StreamingRecognizeRequest],
        backend: str | None = None,
    ) -> AsyncIterator[stt_pb2.StreamingRecognizeResponse]:
        if first is None or not first.HasField("streaming_config"):
            raise InvalidArgument("the first message of a stream must carry streaming_config")
        speakers.refuse_streaming(first.streaming_config.config)
        # No audio has come yet to detect a language in: an empty code goes to the detector.
        chain = self._chain(first.streaming_config.config.language_code, call, False, backend)
        messages = ClientMessages(first, rest, self.settings.stream_replay_bytes)
        async for response in self._streams.relay(call, chain, messages):
            yield response

    def shutdown(self) -> None:
        self._streams.shutdown()

    def _chain(self, code: str, call: Call, detected: bool, backend: str | None) -> tuple[str, ...]:
        if backend is not None:  # pinned: the backend decides what it serves
            call.language = self._label(code)
            return (backend,)
        if not code.strip():  # no speech to detect a language in: the detector answers
            return self._detector_chain()
        call.language = "unknown"
        route = self.table.route(code, detected=detected)
        call.language = route.pattern
        return route.backends

    def _label(self, code: str) -> str:
        if not code.strip():
            return "detect"
        normalised = normalise(code)
        matching = [r for r in self.table.routes if r.matches(normalised)]
        return max(matching, key=lambda r: r.specificity).pattern if matching else "unknown"

    def _detector_chain(self) -> tuple[str, ...]:
        if not self.table.detector:
            raise InvalidArgument("language_code is required: this router has no detector")
        return self.table.detector_route().backends

    @contextlib.asynccontextmanager
    async def serving(self, method: str, incoming: Incoming) -> AsyncIterator[Call]:
        """One request: its scope, readiness, metrics and trace. An error leaves as `Refused`
        once it is counted; a non-`SttError` is logged and becomes INTERNAL."""
        started = time.perf_counter()
        attributes = {"stt.service": ROUTER, "stt.api": incoming.api}
        with open_scope(
            incoming.span_name, incoming.metadata, incoming.remaining_s, attributes
        ) as scope:
            remaining = incoming.remaining_s
            timeout = self.settings.default_timeout_s if remaining is None else remaining
            call = Call(
                method,
                "detect",
                time.monotonic() + timeout,
                scope.outgoing_metadata(),
                scope.span,
                scope.request_id,
            )
            refusal = None
            self.in_flight += 1
            try:
                self.lifecycle.require_ready()
                yield call
            except SttError as error:
                scope.code = error.code
                self._refused(error, call, incoming.api)
                refusal = Refused(error, scope.request_id)
            except (asyncio.CancelledError, GeneratorExit):
                scope.code = _abandoned(call)
                raise
            except Exception:
                scope.code = grpc.StatusCode.INTERNAL
                log.exception("request failed")
                internal = SttError(f"internal error (request id {scope.request_id})")
                refusal = Refused(internal, scope.request_id)
            finally:
                self.in_flight -= 1
                self._observe(incoming.api, method, call.language, scope.code, started)
        if refusal is not None:  # raised only now, so the metrics already count it
            raise refusal

    def _observe(
        self, api: str, method: str, language: str, code: grpc.StatusCode, started: float
    ) -> None:
        service = self._metrics.service
        self._metrics.requests.labels(service, api, method, language, code.name).inc()
        self._metrics.latency.labels(service, api, method).observe(time.perf_counter() - started)

    def _refused(self, error: SttError, call: Call, api: str) -> None:
        if isinstance(error, Relayed):
            return  # the backend's answer, counted as an attempt
        reason = error.reason.lower()
        service = self._metrics.service
        self._metrics.rejections.labels(service, api, call.method, call.language, reason).inc()
        log.info("request refused", extra={"code": error.code.name, "reason": error.message})


def _abandoned(call: Call) -> grpc.StatusCode:
    """Why a request ended early: its deadline passed, or the client went away."""
    if call.remaining() <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED
