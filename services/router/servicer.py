"""The router's stt.v1.Speech: each request goes to a backend for its language, with failover.

A request without a language is first sent to the detector backend's DetectLanguage, then
routed by the language found; its response then carries that language and its probability.
The router keeps the client's deadline (a default one when there is none), forwards a request
id and the trace context, and relays a backend's own refusals unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from services.core.audio import AudioLimits
from services.core.errors import InvalidArgument, Relayed, SttError, to_grpc_status
from services.core.requests import REQUEST_ID_HEADER, abandoned_code, request_scope
from services.jobs.intake import JobIntake
from services.jobs.service import OperationsServicer
from services.jobs.store import Store
from services.router import speakers
from services.router.failover import Call, Failover
from services.router.health import RouterLifecycle
from services.router.info import service_info
from services.router.metrics import RouterMetrics
from services.router.pool import BackendPool
from services.router.routing import Route, RoutingTable
from services.router.settings import RouterSettings
from services.router.streaming import ClientMessages, StreamRelay

log = logging.getLogger("stt.router")
ROUTER = "router"


class RouterServicer(stt_pb2_grpc.SpeechServicer):
    def __init__(
        self,
        settings: RouterSettings,
        table: RoutingTable,
        pool: BackendPool,
        lifecycle: RouterLifecycle,
        metrics: RouterMetrics,
        store: Store | None = None,
    ):
        self._settings = settings
        self._table = table
        self._pool = pool
        self._lifecycle = lifecycle
        self._metrics = metrics
        self._failover = Failover(pool, settings, metrics)
        self._streams = StreamRelay(self._failover, settings.max_streams)
        self._speakers = speakers.SpeakerLabels(table, self._failover)
        self.in_flight = 0
        intake = None
        if store is not None:
            limits = AudioLimits(settings.max_message_bytes, settings.job_max_audio_seconds)
            intake = JobIntake(store, table, settings.quota_policy(), limits)
        self.operations = OperationsServicer(
            store, intake, self.serving, metrics.jobs, ROUTER, settings.wait_max_s
        )

    async def Recognize(self, request, context):
        async with self.serving("Recognize", context) as call:
            if speakers.wanted(request.config):
                return await self._speakers.recognize(request, call, self._recognize)
            return await self._recognize(request, call)

    async def _recognize(
        self, request: stt_pb2.RecognizeRequest, call: Call
    ) -> stt_pb2.RecognizeResponse:
        probability = None
        if not request.config.language_code.strip():
            detected = await self._detect(request, call)
            request.config.language_code = detected.language_code
            probability = detected.language_probability
        route = self._route(request.config.language_code, call, probability is not None)
        response = await self._failover.call(
            call,
            route.backends,
            lambda b, timeout: b.speech.Recognize(request, timeout=timeout, metadata=call.metadata),
        )
        if probability is not None:
            response.language_probability = probability
        return response

    async def LongRunningRecognize(self, request, context):
        async with self.serving("LongRunningRecognize", context) as call:
            self._route(request.config.language_code, call, False)
            request_id = dict(call.metadata)[REQUEST_ID_HEADER]
            return await self.operations.accept(request, context, request_id)

    async def DetectLanguage(self, request, context):
        async with self.serving("DetectLanguage", context) as call:
            return await self._detect(request, call)

    async def StreamingRecognize(self, request_iterator, context):
        async with self.serving("StreamingRecognize", context) as call:
            first = await anext(request_iterator, None)
            if first is None or not first.HasField("streaming_config"):
                raise InvalidArgument("the first message of a stream must carry streaming_config")
            speakers.refuse_streaming(first.streaming_config.config)
            # No audio has come yet to detect a language in: an empty code goes to the detector.
            route = self._route(first.streaming_config.config.language_code, call, False)
            limit = self._settings.stream_replay_bytes
            messages = ClientMessages(first, request_iterator, limit)
            async for response in self._streams.relay(call, route.backends, messages):
                yield response

    async def GetServiceInfo(self, request, context):
        return await service_info(self._table, self._pool, self._lifecycle, self._settings)

    def shutdown(self) -> None:
        self._streams.shutdown()

    async def _detect(self, request, call: Call) -> stt_pb2.DetectLanguageResponse:
        detector = self._detector_route()
        detection = stt_pb2.DetectLanguageRequest(config=request.config, audio=request.audio)
        response = await self._failover.call(
            call,
            detector.backends,
            lambda b, timeout: b.speech.DetectLanguage(
                detection, timeout=timeout, metadata=call.metadata
            ),
        )
        language = response.language_code or "none"
        self._metrics.detections.labels(self._metrics.service, language).inc()
        return response

    def _route(self, code: str, call: Call, detected: bool) -> Route:
        if not code.strip():  # no speech to detect a language in: the detector answers
            return self._detector_route()
        call.language = "unknown"
        route = self._table.route(code, detected=detected)
        call.language = route.pattern
        return route

    def _detector_route(self) -> Route:
        if not self._table.detector:
            raise InvalidArgument("language_code is required: this router has no detector")
        return self._table.detector_route()

    @contextlib.asynccontextmanager
    async def serving(self, method: str, context, language: str = "detect") -> AsyncIterator[Call]:
        """One request: its scope, readiness, error mapping and metrics. `language` labels its
        metrics until a route is chosen (Operations calls, which have none, give "none")."""
        started = time.perf_counter()
        refusal = None
        with request_scope(method, context, ROUTER) as scope:
            remaining = context.time_remaining()
            timeout = self._settings.default_timeout_s if remaining is None else remaining
            call = Call(
                method, language, time.monotonic() + timeout, scope.outgoing_metadata(), scope.span
            )
            self.in_flight += 1
            try:
                self._lifecycle.require_ready()
                yield call
                context.set_trailing_metadata(((REQUEST_ID_HEADER, scope.request_id),))
            except SttError as error:
                scope.code = error.code
                self._refused(error, call)
                refusal = to_grpc_status(error, scope.request_id)
            except asyncio.CancelledError:
                scope.code = abandoned_code(context)
                raise
            except Exception as error:
                scope.code = grpc.StatusCode.INTERNAL
                log.exception("request failed")
                refusal = to_grpc_status(error, scope.request_id)
            finally:
                self.in_flight -= 1
                self._observe(method, call.language, scope.code, time.perf_counter() - started)
        if refusal is not None:  # answered only now, so the metrics already count it
            await context.abort_with_status(refusal)

    def _observe(self, method: str, language: str, code: grpc.StatusCode, took_s: float) -> None:
        service = self._metrics.service
        self._metrics.requests.labels(service, method, language, code.name).inc()
        self._metrics.latency.labels(service, method).observe(took_s)

    def _refused(self, error: SttError, call: Call) -> None:
        if isinstance(error, Relayed):
            return  # the backend's answer, counted as an attempt
        reason = error.reason.lower()
        service = self._metrics.service
        self._metrics.rejections.labels(service, call.method, call.language, reason).inc()
        log.info("request refused", extra={"code": error.code.name, "reason": error.message})
