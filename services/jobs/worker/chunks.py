"""A job's audio as chunks: stretches of at most `chunk_seconds` that begin and end in pauses
(VAD speech spans grouped greedily), each sent to Recognize on its own. Silence between
chunks is not sent at all.

The plan is made once per job and stored with it, so that a worker taking over after another
one died sends exactly the chunks that are missing, whatever its own settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from stt.v1 import stt_pb2

from services.core.backend import SAMPLE_RATE
from services.core.vad import Span


@dataclass(frozen=True)
class Chunk:
    """Samples `start` to `end` of the job's 16 kHz audio (of its channel `channel`, 0 for
    the first, when each channel is recognised on its own)."""

    start: int
    end: int
    channel: int = 0

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE

    def pcm(self, samples: np.ndarray) -> bytes:
        """The chunk as raw 16-bit little-endian PCM (LINEAR16) at 16 kHz."""
        part = np.clip(samples[self.start : self.end], -1.0, 1.0)
        return (part * 32767).astype("<i2").tobytes()


def plan(spans: list[Span], max_seconds: float, channel: int = 0) -> list[Chunk]:
    """Consecutive speech spans grouped into chunks spanning at most `max_seconds` each (a span
    is never longer: the VAD splits longer speech)."""
    limit = int(max_seconds * SAMPLE_RATE)
    chunks: list[Chunk] = []
    for span in spans:
        if chunks and span.end - chunks[-1].start <= limit:
            chunks[-1] = Chunk(chunks[-1].start, span.end, channel)
        else:
            chunks.append(Chunk(span.start, span.end, channel))
    return chunks


def fixed(total_samples: int, max_seconds: float, channel: int = 0) -> list[Chunk]:
    """Chunks of equal time, for a job that turned voice activity detection off."""
    step = int(max_seconds * SAMPLE_RATE)
    return [Chunk(s, min(s + step, total_samples), channel) for s in range(0, total_samples, step)]


def dumps(chunks: list[Chunk]) -> str:
    return json.dumps([[c.start, c.end, *([c.channel] if c.channel else [])] for c in chunks])


def loads(text: str) -> list[Chunk]:
    return [Chunk(*(int(value) for value in entry)) for entry in json.loads(text)]


def progress(chunks: list[Chunk], done: set[int]) -> int:
    """Percent of the chunked audio transcribed."""
    total = sum(c.seconds for c in chunks)
    if not total:
        return 100
    finished = sum(c.seconds for index, c in enumerate(chunks) if index in done)
    return min(100, int(100 * finished / total))


def shift(response: stt_pb2.RecognizeResponse, chunk: Chunk, word_offsets: bool) -> None:
    """Moves a chunk's offsets onto the job's timeline, in place."""
    offset_ns = round(chunk.start * 1e9 / SAMPLE_RATE)
    for result in response.results:
        _move(result.result_start_offset, offset_ns)
        _move(result.result_end_offset, offset_ns)
        if not word_offsets:
            continue
        for alternative in result.alternatives:
            for word in alternative.words:
                _move(word.start_offset, offset_ns)
                _move(word.end_offset, offset_ns)


def _move(value, offset_ns: int) -> None:
    value.FromNanoseconds(value.ToNanoseconds() + offset_ns)
