"""The recognition pipeline, in plain Python: decode, find speech, cut, transcribe, cache.

It runs in a worker thread and knows nothing of gRPC; the servicer translates messages and
holds the gate around `run`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from services.core import audio as audio_mod
from services.core import channel_audio
from services.core.backend import Backend, DecodeOptions, Transcript
from services.core.batching import Batcher, BatchLimits
from services.core.cache import ResultCache, cache_key
from services.core.cancellation import Cancellation
from services.core.chunking import Piece, one_utterance, pack_spans, whole
from services.core.fanout import Fanout
from services.core.metrics import ServiceMetrics
from services.core.tracing import tracer
from services.core.vad import VoiceActivityDetector


@dataclass(frozen=True)
class RecognitionJob:
    content: bytes
    audio: audio_mod.AudioSpec
    options: DecodeOptions
    vad: bool


@dataclass(frozen=True)
class Recognition:
    transcript: Transcript
    audio_seconds: float
    # With separate recognition per channel: each channel's transcript, the first channel's
    # first (`transcript` then holds all their segments, in time order).
    channels: tuple[Transcript, ...] | None = None


@dataclass(frozen=True)
class Detection:
    """The language heard in the first piece of speech; empty when there is no speech."""

    language: str
    probability: float
    audio_seconds: float


class Recognizer:
    def __init__(
        self,
        backend: Backend,
        vad: VoiceActivityDetector,
        limits: audio_mod.AudioLimits,
        cache: ResultCache[Recognition],
        metrics: ServiceMetrics,
        max_chunk_seconds: float,
        batcher: Batcher | None = None,
        fanout: Fanout | None = None,
    ):
        self._backend = backend
        self._batcher = batcher or Batcher(BatchLimits())
        self._fanout = fanout or Fanout(1, 0)
        self._vad = vad
        self._limits = limits
        self._cache = cache
        self._metrics = metrics
        self._max_chunk_s = min(max_chunk_seconds, backend.max_chunk_seconds)

    def cached(self, job: RecognitionJob) -> Recognition | None:
        """The stored answer for this exact audio and options, counted as a hit or a miss."""
        if not self._cache.enabled:
            return None
        found = self._cache.get(self._key(job))
        counter = self._metrics.cache_hits if found else self._metrics.cache_misses
        counter.labels(self._metrics.service).inc()
        return found

    def run(self, job: RecognitionJob, cancellation: Cancellation) -> Recognition:
        if job.audio.separate_channels:
            result = self._run_channels(job, cancellation)
        else:
            with self._stage("decode"):
                decoded = audio_mod.decode(job.content, job.audio, self._limits)
            cancellation.check()
            transcript = self._recognize(decoded.samples, decoded.silent, job, cancellation)
            result = Recognition(transcript, decoded.duration)
        self._cache.put(self._key(job), result)
        return result

    def _run_channels(self, job: RecognitionJob, cancellation: Cancellation) -> Recognition:
        """Each channel recognised on its own; a silent one has no results."""
        with self._stage("decode"):
            decoded = channel_audio.decode_channels(job.content, job.audio, self._limits)
        found = []
        for index, samples in enumerate(decoded.channels):
            cancellation.check()
            found.append(self._recognize(samples, decoded.silent(index), job, cancellation))
        segments = sorted((s for t in found for s in t.segments), key=lambda s: s.start)
        heard = next((t for t in found if t.segments), found[0])
        merged = Transcript(tuple(segments), heard.language, heard.language_probability)
        return Recognition(merged, decoded.duration, tuple(found))

    def _recognize(
        self, samples, silent: bool, job: RecognitionJob, cancellation: Cancellation
    ) -> Transcript:
        pieces = [] if silent else self._pieces(samples, job)
        options = self._chosen_language(samples, pieces, job.options, cancellation)
        with self._stage("inference"):
            return self._transcribe(samples, pieces, options, cancellation)

    def _chosen_language(
        self, samples, pieces: list[Piece], options: DecodeOptions, cancellation: Cancellation
    ) -> DecodeOptions:
        """With candidate languages, the one the first piece of speech is in."""
        if not options.candidates or options.language or not pieces:
            return options
        with self._stage("language_id"), self._batcher.producing(cancellation):
            language, _ = self._backend.detect_language(
                pieces[0].audio(samples), cancellation, options.candidates
            )
        return replace(options, language=language or options.candidates[0])

    def detect(self, job: RecognitionJob, cancellation: Cancellation) -> Detection:
        with self._stage("decode"):
            decoded = audio_mod.decode(job.content, job.audio, self._limits)
        cancellation.check()
        pieces = [] if decoded.silent else self._pieces(decoded.samples, job)
        if not pieces:
            return Detection("", 0.0, decoded.duration)
        first = pieces[0].audio(decoded.samples)
        with self._stage("language_id"), self._batcher.producing(cancellation):
            language, probability = self._backend.detect_language(
                first, cancellation, job.options.candidates
            )
        return Detection(language, probability, decoded.duration)

    def _pieces(self, samples, job: RecognitionJob) -> list[Piece]:
        if not job.vad:
            return [whole(samples)]
        with self._stage("vad"):
            # Spans of at most half a piece pack pieces fuller (fewer model windows) than
            # spans that may fill a piece alone; they are still cut only at pauses.
            spans = self._vad.speech_spans(samples, self._max_chunk_s / 2)
        if job.options.phrases:
            return one_utterance(spans, self._max_chunk_s)
        return pack_spans(spans, self._max_chunk_s)

    def _transcribe(
        self, samples, pieces: list[Piece], options: DecodeOptions, cancellation: Cancellation
    ) -> Transcript:
        language, probability = options.language or "", 0.0
        parts: list[Transcript] = []
        if pieces and not options.language:
            # The first piece decides the language, so one request never mixes languages.
            first = self._piece(samples, pieces[0], options, cancellation)
            language, probability = first.language, first.language_probability
            options = replace(options, language=first.language)
            parts.append(first)
        # A backend that batches decodes the other pieces together, so they go at once.
        limit = self._batcher.limits.max_batch_size if self._backend.batches else 1
        parts += self._fanout.map(
            lambda piece: self._piece(samples, piece, options, cancellation),
            pieces[len(parts) :],
            limit,
            cancellation,
        )
        segments = [
            piece.restore(s)
            for piece, part in zip(pieces, parts, strict=True)
            for s in part.segments
        ]
        return Transcript(tuple(segments), language, probability)

    def _piece(
        self, samples, piece: Piece, options: DecodeOptions, cancellation: Cancellation
    ) -> Transcript:
        cancellation.check()
        with self._batcher.producing(cancellation):
            return self._backend.transcribe(piece.audio(samples), options, cancellation)

    def _key(self, job: RecognitionJob) -> str:
        return cache_key(job.content, job.audio, job.options, job.vad, self._max_chunk_s)

    def _stage(self, name: str):
        return stage(self._metrics, name)


@contextlib.contextmanager
def stage(metrics: ServiceMetrics, name: str) -> Iterator[None]:
    """A child span of the request span, and a stage-duration observation."""
    started = time.perf_counter()
    with tracer.start_as_current_span(f"stt.{name}"):
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            metrics.stage.labels(metrics.service, name).observe(elapsed)
