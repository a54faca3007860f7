"""The router's one request path, shared by every API it speaks.

stt.v1, Google Cloud Speech v1, NVIDIA Riva ASR and the OpenAI audio API are front ends: each
turns its request into an stt.v1 request, serves it in the core's call scope and asks this
path for what it needs, through the few methods below and nothing else: recognize, detect,
stream, diarize, the backends a request may be pinned to, the language label of a job, and a
description of what the router serves. Then it turns the answer, or the refusal, back into
its own dialect.

A request without a language is first sent to the detector backend's DetectLanguage, then
routed by the language found; its response then carries that language and its probability.
A front end may instead pin a request to one backend by name (the model names the OpenAI
and Riva APIs accept). The call's deadline goes to the backend with a request id and the
trace context; a backend's own refusals are relayed as they are. A Recognize that asks for
speaker diarization also goes to the diarization service (see `speakers.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from stt.v1 import stt_pb2

from services.core.calls import Call
from services.core.errors import InvalidArgument
from services.core.names import MODEL_HEADER, SERVICE_HEADER
from services.core.stream_convert import require_config
from services.router import info, speakers
from services.router.config import normalise
from services.router.failover import Failover
from services.router.metrics import RouterMetrics
from services.router.pool import BackendPool
from services.router.routing import RoutingTable
from services.router.settings import RouterSettings
from services.router.streaming import ClientMessages, StreamRelay


class RequestPath:
    def __init__(
        self,
        settings: RouterSettings,
        table: RoutingTable,
        pool: BackendPool,
        metrics: RouterMetrics,
    ):
        self._table = table
        self._pool = pool
        self._metrics = metrics
        self._info_timeout_s = settings.channels.info_timeout_s
        self._replay_bytes = settings.streams.stream_replay_bytes
        self._failover = Failover(pool, settings.failover, metrics)
        self._streams = StreamRelay(self._failover, settings.streams.max_streams)
        self._speakers = speakers.SpeakerLabels(table, self._failover)

    @property
    def backends(self) -> list[str]:
        """The names a request may be pinned to."""
        return sorted(self._table.backends)

    async def recognize(
        self, call: Call, request: stt_pb2.RecognizeRequest, backend: str | None = None
    ) -> stt_pb2.RecognizeResponse:
        if speakers.wanted(request.config):
            response = await self._speakers.recognize(
                request, call, lambda words, c: self._transcribe(c, words, backend)
            )
        else:
            response = await self._transcribe(call, request, backend)
        call.trailing.extend(((SERVICE_HEADER, response.service), (MODEL_HEADER, response.model)))
        return response

    async def detect(self, call: Call, request) -> stt_pb2.DetectLanguageResponse:
        """The detector's DetectLanguage for the audio of `request` (any request with a
        config and audio)."""
        detection = stt_pb2.DetectLanguageRequest(config=request.config, audio=request.audio)
        response = await self._failover.call(
            call,
            self._detector_chain(),
            lambda b, timeout: b.speech.DetectLanguage(
                detection, timeout=timeout, metadata=call.outgoing
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
        require_config(first)
        speakers.refuse_streaming(first.streaming_config.config)
        # No audio has come yet to detect a language in: an empty code goes to the detector.
        chain = self._chain(first.streaming_config.config.language_code, call, False, backend)
        messages = ClientMessages(first, rest, self._replay_bytes)
        async for response in self._streams.relay(call, chain, messages):
            yield response

    async def diarize(self, call: Call, request: stt_pb2.DiarizeRequest) -> stt_pb2.DiarizeResponse:
        """The diarization service's Diarize (the job workers' way to it)."""
        return await self._speakers.diarize(request, call)

    def job_language(self, code: str) -> str:
        """The route a job's language takes (its metrics label), or "detect" when its first
        chunk will tell; refuses an unrouted language, or none where nothing can detect it."""
        if code.strip():
            return self._table.route(code).pattern
        self._detector_chain()
        return "detect"

    async def describe(self) -> stt_pb2.ServiceInfo:
        """What the router serves (its languages, routes and each backend as it describes
        itself), without its own state, which the caller knows."""
        return await info.describe(self._table, self._pool, self._info_timeout_s)

    def shutdown(self) -> None:
        self._streams.shutdown()

    async def _transcribe(
        self, call: Call, request: stt_pb2.RecognizeRequest, backend: str | None
    ) -> stt_pb2.RecognizeResponse:
        probability, chosen = None, ""
        choosing = request.config.alternative_language_codes and self._table.detector
        if backend is None and choosing:
            chosen, probability = await self._choose_language(call, request)
        elif backend is None and not request.config.language_code.strip():
            detected = await self.detect(call, request)
            request.config.language_code = detected.language_code
            probability = detected.language_probability
        chain = self._chain(request.config.language_code, call, probability is not None, backend)
        response = await self._failover.call(
            call,
            chain,
            lambda b, timeout: b.speech.Recognize(request, timeout=timeout, metadata=call.outgoing),
        )
        if probability is not None:
            response.language_probability = probability
        if chosen:  # the code the client gave for the language found, in every result
            response.language_code = chosen
            for result in response.results:
                result.language_code = chosen
        return response

    async def _choose_language(self, call: Call, request) -> tuple[str, float]:
        """The language among language_code and the alternatives (the detector's choice, or
        language_code where the audio holds no speech); the request is routed by it. (With
        no detector, the alternatives go to the backend of language_code, to choose among
        those it serves.)"""
        detected = await self.detect(call, request)
        config = request.config
        chosen = detected.language_code or config.language_code
        config.language_code = chosen
        config.ClearField("alternative_language_codes")
        return chosen, detected.language_probability

    def _chain(self, code: str, call: Call, detected: bool, backend: str | None) -> tuple[str, ...]:
        if backend is not None:  # pinned: the backend decides what it serves
            call.language = self._label(code)
            return (backend,)
        if not code.strip():  # no speech to detect a language in: the detector answers
            return self._detector_chain()
        call.language = "unknown"
        route = self._table.route(code, detected=detected)
        call.language = route.pattern
        return route.backends

    def _label(self, code: str) -> str:
        if not code.strip():
            return "detect"
        normalised = normalise(code)
        matching = [r for r in self._table.routes if r.matches(normalised)]
        return max(matching, key=lambda r: r.specificity).pattern if matching else "unknown"

    def _detector_chain(self) -> tuple[str, ...]:
        if not self._table.detector:
            raise InvalidArgument("language_code is required: this router has no detector")
        return self._table.detector_route().backends
