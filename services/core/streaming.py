"""One recognition stream: endpointing, interim and final decodes, and their events.

Audio samples go in through `push`; events come out through the `emit` callback. Decodes run
as background tasks through `decode` (which holds an inference slot only while it runs), at
most one at a time per stream, so a stream never holds a slot while it waits for audio.

When a pause starts, the final decode of the utterance starts at once, speculatively: by the
time the pause is long enough to end the utterance, the final is usually ready. A decode's
result is taken as soon as it is done, not at the next audio message, and the next decode
starts then: a lock keeps that and the arriving audio from acting on the stream at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import numpy as np

from services.core.backend import SAMPLE_RATE, DecodeOptions, Segment, Transcript
from services.core.endpointer import Endpointer, EndpointSettings, SpeechStarted
from services.core.errors import OutOfRange
from services.core.stabilizer import LocalAgreement
from services.core.vad import StreamingVad

Decode = Callable[[np.ndarray, DecodeOptions], Awaitable[Transcript]]
CONTEXT_WORDS = 40
# How long Silero's probability takes to decay after the last word (100 to 250 ms seen here):
# weak speech this long after a decode's audio ended is taken for that decay, not more words.
TRAIL_SAMPLES = 256 * SAMPLE_RATE // 1000


@dataclass(frozen=True)
class StreamSettings:
    endpoint: EndpointSettings
    interim_interval_s: float = 0.5
    speculate_after_ms: int = 32
    max_utterance_s: float = 30.0
    max_stream_s: float = 3600.0


@dataclass(frozen=True)
class SpeechBegan:
    offset_s: float


@dataclass(frozen=True)
class SpeechEnded:
    offset_s: float


@dataclass(frozen=True)
class Interim:
    text: str
    stability: float
    start_s: float
    end_s: float
    language: str


@dataclass(frozen=True)
class Final:
    segments: tuple[Segment, ...]  # offsets from the start of the stream
    start_s: float
    end_s: float
    language: str
    latency_s: float | None  # from the end of speech arriving to this result


@dataclass(frozen=True)
class EndOfSingleUtterance:
    pass


Event = SpeechBegan | SpeechEnded | Interim | Final | EndOfSingleUtterance


@dataclass
class _Job:
    task: asyncio.Task
    start: int
    end: int


class StreamSession:
    def __init__(
        self,
        decode: Decode,
        options: DecodeOptions,
        settings: StreamSettings,
        emit: Callable[[Event], None],
        interim_results: bool,
        single_utterance: bool,
    ):
        self._decode, self._options, self._s, self._emit = decode, options, settings, emit
        self._interim_results, self._single = interim_results, single_utterance
        self._vad = StreamingVad()
        self._endpointer = Endpointer(settings.endpoint)
        self._agreement = LocalAgreement()
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_start = 0  # absolute index of self._audio[0]
        self._received = 0
        self._arrivals: list[tuple[int, float]] = []  # (samples received, wall time)
        self._utterance: int | None = None  # absolute start of the current utterance
        self._last_interim = 0
        self._job: _Job | None = None
        self._candidate: tuple[int, Transcript] | None = None  # a finished final decode
        self._history: list[str] = []  # words of the finals so far
        self._decode_s = 0.0  # wall time of the last decode
        self._started_at = 0.0
        self._lock = asyncio.Lock()
        self._advancing: set[asyncio.Task] = set()  # taking finished decodes' results
        self._ended = False
        self._failure: Exception | None = None  # of a step taken between messages
        self.closed = False  # after the single utterance ended

    async def push(self, samples: np.ndarray) -> None:
        if self.closed or samples.size == 0:
            return
        async with self._lock:
            self._raise_failure()
            await self._push(samples)

    async def _push(self, samples: np.ndarray) -> None:
        self._received += len(samples)
        if self._received > self._s.max_stream_s * SAMPLE_RATE:
            raise OutOfRange(f"the stream is over its limit of {self._s.max_stream_s:.0f} s")
        self._arrivals.append((self._received, time.monotonic()))
        self._audio = np.concatenate([self._audio, samples])
        for event in self._endpointer.update(self._vad.push(samples)):
            if isinstance(event, SpeechStarted):
                self._begin(event.start)
            else:
                await self._finalise(event.end)
            if self.closed:
                return
        await self._collect()
        await self._schedule()
        self._trim()

    async def finish(self) -> None:
        """Half-close: the utterance in progress ends where its speech ends."""
        async with self._lock:
            self._raise_failure()
            if self._utterance is not None and not self.closed:
                await self._finalise(self._endpointer.padded_end(self._received))
            self._ended = True
        await self.cancel()

    async def cancel(self) -> None:
        self._ended = True
        tasks = [*self._advancing, *([self._job.task] if self._job else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._job = None

    def _decoded(self, task: asyncio.Task) -> None:
        """A decode ended: take its result now. A failed one is left for the next message,
        whose `push` raises its error to the caller."""
        if not (self._ended or task.cancelled() or task.exception()):
            advancing = asyncio.ensure_future(self._advance())
            self._advancing.add(advancing)
            advancing.add_done_callback(self._advancing.discard)

    async def _advance(self) -> None:
        async with self._lock:
            if self._ended or self._failure:
                return
            try:
                await self._collect()
                await self._schedule()
            except Exception as error:  # a forced final's decode failed: the caller is told
                self._failure = error  # at its next message, as if that message had failed

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _begin(self, start: int) -> None:
        self._utterance = max(start, self._audio_start)
        self._last_interim = self._utterance
        self._agreement.reset()
        self._candidate = None
        self._emit(SpeechBegan(self._utterance / SAMPLE_RATE))

    async def _schedule(self) -> None:
        """Starts the next decode this stream needs, if none is running."""
        if self._utterance is None or self._job is not None:
            return
        now = self._received
        if now - self._utterance >= self._s.max_utterance_s * SAMPLE_RATE:
            await self._finalise(now)  # forced final; the speech goes on in a new utterance
            self._begin(now)
            return
        pause_ms = self._endpointer.quiet * 1000 / SAMPLE_RATE
        if pause_ms >= self._s.speculate_after_ms:
            if not self._covers_speech(self._candidate):
                self._start(self._utterance, self._endpointer.padded_end(now))
        # Interims only while speech is sure: in what may be the start of a pause, an interim
        # would keep the final waiting.
        elif pause_ms == 0 and self._interim_due(now):
            self._last_interim = now
            self._start(self._utterance, now)

    def _interim_due(self, now: int) -> bool:
        return self._interim_results and now - self._last_interim >= self._interval

    @property
    def _interval(self) -> int:
        """Audio between interim decodes: the setting, or three times the last decode's time
        when that is longer. Interims then keep the stream's decoding busy a third of the
        time at most, so a pause seldom starts while one runs and keeps the final waiting
        (with twice, the 30 s benchmark clip's end-to-final p50 was 40 to 60 ms longer)."""
        seconds = max(self._s.interim_interval_s, 3 * self._decode_s)
        return int(seconds * SAMPLE_RATE)

    def _start(self, start: int, end: int) -> None:
        audio = self._audio[start - self._audio_start : end - self._audio_start]
        self._started_at = time.monotonic()
        # The words of earlier utterances give the model context a short one lacks.
        context = " ".join(self._history[-CONTEXT_WORDS:])
        options = replace(self._options, prefix=self._agreement.prefix, context=context)
        task = asyncio.ensure_future(self._decode(audio, options))
        task.add_done_callback(self._decoded)
        self._job = _Job(task, start, end)

    async def _collect(self, send_interim: bool = True) -> None:
        """Takes the result of a finished decode, if any."""
        if self._job is None or not self._job.task.done():
            return
        job, self._job = self._job, None
        transcript = job.task.result()  # a failed decode ends the stream with its status
        self._decode_s = time.monotonic() - self._started_at
        if job.start != self._utterance:
            return  # an utterance that has ended since
        # Interims decode exactly as finals do, so one that heard all the speech of the
        # utterance is its final too: a pause that starts during an interim costs no decode.
        # Likewise a final decoded early, for a pause that did not end the utterance, is an
        # interim of it.
        self._candidate = (job.end, transcript)
        if send_interim and self._interim_results:
            self._send_interim(job, transcript)

    def _send_interim(self, job: _Job, transcript: Transcript) -> None:
        text = " ".join(s.text.strip() for s in transcript.segments).strip()
        if not text:
            return
        stability = self._agreement.update(text)
        self._emit(
            Interim(
                text, stability, job.start / SAMPLE_RATE, job.end / SAMPLE_RATE, transcript.language
            )
        )

    async def _finalise(self, end: int) -> None:
        if self._utterance is None:
            return
        if self._single:
            # Tell the client at once that no more audio is wanted; the final follows.
            self._emit(EndOfSingleUtterance())
            self.closed = True
        start = self._utterance
        transcript = await self._final_transcript(start, end)
        offset = start / SAMPLE_RATE
        self._history.extend(w for s in transcript.segments for w in s.text.split())
        self._emit(
            Final(
                tuple(s.shifted(offset) for s in transcript.segments),
                offset,
                end / SAMPLE_RATE,
                transcript.language,
                self._latency(end),
            )
        )
        self._emit(SpeechEnded(end / SAMPLE_RATE))
        self._utterance, self._candidate = None, None
        self._agreement.reset()

    async def _final_transcript(self, start: int, end: int) -> Transcript:
        if self._job is not None:
            await asyncio.wait({self._job.task})
            await self._collect(send_interim=False)  # the final is about to say more
        if self._covers_speech(self._candidate):
            return self._candidate[1]
        self._start(start, end)
        job, self._job = self._job, None
        return await job.task

    def _covers_speech(self, candidate: tuple[int, Transcript] | None) -> bool:
        """A final decode is still good if no sure speech came after the audio it heard, nor
        weak speech for longer than the trail of the same words."""
        if candidate is None:
            return False
        end, endpointer = candidate[0], self._endpointer
        return end >= endpointer.last_voiced and end + TRAIL_SAMPLES >= endpointer.last_speech

    def _latency(self, end: int) -> float | None:
        """Seconds since the audio holding the end of speech arrived."""
        speech_end = end - self._s.endpoint.pad_ms * SAMPLE_RATE // 1000
        for received, arrived in self._arrivals:
            if received >= speech_end:
                return time.monotonic() - arrived
        return None

    def _trim(self) -> None:
        """Drops audio no decode can need: before the utterance, or the pad before speech."""
        keep_from = self._utterance
        if keep_from is None:
            keep_from = self._received - self._s.endpoint.pad_ms * SAMPLE_RATE // 1000
        if self._job is not None:
            keep_from = min(keep_from, self._job.start)
        drop = max(0, keep_from - self._audio_start)
        if drop:
            self._audio = self._audio[drop:]
            self._audio_start += drop
        self._arrivals = [a for a in self._arrivals if a[0] >= self._audio_start]
