"""StreamingRecognize on a language service: reads the config and the audio, runs a
`StreamSession`, and writes its events as responses while the audio still arrives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from services.core import stream_convert
from services.core.backend import Backend, Transcript
from services.core.batching import Batcher
from services.core.calls import Call
from services.core.endpointer import EndpointSettings
from services.core.metrics import ServiceMetrics
from services.core.settings import ServiceSettings
from services.core.slots import InferenceSlots
from services.core.stream_audio import stream_decoder
from services.core.streaming import Final, StreamSession, StreamSettings

Response = stream_convert.Response


class StreamServicer:
    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        backend: Backend,
        slots: InferenceSlots,
        metrics: ServiceMetrics,
        batcher: Batcher,
    ):
        self._service = service
        self._batcher = batcher
        self._settings = settings
        self._backend = backend
        self._slots = slots
        self._metrics = metrics
        self._defaults = StreamSettings(
            EndpointSettings(
                threshold=settings.vad_threshold,
                end_silence_ms=settings.stream_endpoint_silence_ms,
                pad_ms=settings.vad_speech_pad_ms,
            ),
            interim_interval_s=settings.stream_interim_interval_s,
            max_utterance_s=min(settings.stream_max_utterance_s, backend.max_chunk_seconds),
            max_stream_s=settings.stream_max_seconds,
        )

    async def serve(self, call: Call, requests) -> AsyncIterator[Response]:
        """One StreamingRecognize call: its responses, as the session makes them, while the
        audio still arrives."""
        streaming, spec, options = stream_convert.to_stream_setup(
            await anext(requests, None), self._backend.info.languages, self._service
        )
        self._backend.check(options)
        # A live stream favours latency over the last bit of accuracy.
        options = replace(options, short_window=True)
        if not options.beam_size:
            options = replace(options, beam_size=self._settings.stream_beam_size)
        decoder = stream_decoder(spec, self._settings.stream_max_buffer_bytes)
        events: asyncio.Queue = asyncio.Queue()
        session = StreamSession(
            lambda audio, opts: self._slots.run(call, self._decode, audio, opts),
            options,
            self._session_settings(streaming),
            events.put_nowait,
            interim_results=streaming.interim_results,
            single_utterance=streaming.single_utterance,
        )
        feeding = asyncio.create_task(self._feed(requests, decoder, session, events))
        self._metrics.active_streams.labels(self._service).inc()
        try:
            while (event := await events.get()) is not None:
                response = self._response(event, streaming, call.request_id)
                if response is not None:
                    yield response
            await feeding  # its failure, if it failed, is the call's
            call.language = options.language or "detect"
        finally:
            # Counted as ended first, and wound down shielded: the client going away while
            # the stream ends on its own (its audio timed out) cancels this frame a second
            # time, which would otherwise skip what follows the await it lands on.
            self._metrics.active_streams.labels(self._service).dec()
            self._metrics.stream_duration.labels(self._service).observe(
                time.perf_counter() - call.started
            )
            await asyncio.shield(asyncio.ensure_future(_wind_down(feeding, session, decoder)))

    def _decode(self, audio, options, cancellation) -> Transcript:
        """One decode of a stream, on a model thread: alone and at once, or, with
        `stream_batching`, in batches with concurrent streams' and requests' passes."""
        if not self._settings.stream_batching:
            with self._batcher.direct():
                return self._backend.transcribe(audio, options, cancellation)
        with self._batcher.producing(cancellation):
            return self._backend.transcribe(audio, options, cancellation)

    def _session_settings(self, streaming) -> StreamSettings:
        """The service's stream settings, with the pause the client chose for this stream."""
        if not streaming.HasField("speech_end_timeout"):
            return self._defaults
        pause_ms = streaming.speech_end_timeout.ToMilliseconds()
        endpoint = replace(self._defaults.endpoint, end_silence_ms=pause_ms)
        return replace(self._defaults, endpoint=endpoint)

    async def _feed(self, requests, decoder, session: StreamSession, events) -> None:
        """Audio messages into the session until the client half-closes or the utterance
        of a single-utterance stream ends; then the end of the events."""
        try:
            async for message in requests:
                stream_convert.require_audio(message)
                await session.push(decoder.feed(message.audio_content))
                if session.closed:
                    return
            await session.push(decoder.close())
            await session.finish()
        finally:
            events.put_nowait(None)

    def _response(self, event, streaming, request_id: str) -> Response | None:
        response = stream_convert.event_response(event, streaming)
        if isinstance(event, Final) and event.latency_s is not None:
            self._metrics.final_latency.labels(self._service).observe(event.latency_s)
        if response is None:
            return None
        if response.results and not response.results[0].is_final:
            self._metrics.interim_results.labels(self._service).inc()
        response.request_id = request_id
        return response


async def _wind_down(feeding: asyncio.Task, session: StreamSession, decoder) -> None:
    """A stream's feeding stopped (the client may never read again), its decodes cancelled
    and its decoder's resources let go."""
    feeding.cancel()
    try:
        await asyncio.gather(feeding, return_exceptions=True)
        await session.cancel()
    finally:
        decoder.abandon()
