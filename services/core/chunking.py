"""Cuts long audio into pieces a model handles well, only where nobody is speaking.

The old service cut at fixed times with overlap and joined the texts, which doubled words at
every join. Here a piece is a run of whole VAD speech spans: a join always falls in a pause,
so no word is on both sides of it and none is lost between them. Inside a piece the pauses
are left out, as faster-whisper's own VAD filter does, so a model window holds speech only;
timings are mapped back to the original audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from faster_whisper.vad import SpeechTimestampsMap

from services.core.backend import SAMPLE_RATE, Segment, Word
from services.core.vad import Span


@dataclass(frozen=True)
class Piece:
    """Speech spans of the request audio, sent to the model as one unit."""

    spans: tuple[Span, ...]
    _map: SpeechTimestampsMap = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        chunks = [{"start": s.start, "end": s.end} for s in self.spans]
        object.__setattr__(self, "_map", SpeechTimestampsMap(chunks, SAMPLE_RATE, 3))

    @property
    def speech_samples(self) -> int:
        return sum(s.end - s.start for s in self.spans)

    def audio(self, samples: np.ndarray) -> np.ndarray:
        if len(self.spans) == 1:
            return samples[self.spans[0].start : self.spans[0].end]
        return np.concatenate([samples[s.start : s.end] for s in self.spans])

    def restore(self, segment: Segment) -> Segment:
        """The segment with its times moved from the piece's audio to the request's."""
        words = tuple(
            Word(w.text, self._time(w.start), self._time(w.end, True), w.confidence)
            for w in segment.words
        )
        return Segment(
            segment.text,
            self._time(segment.start),
            self._time(segment.end, True),
            segment.confidence,
            words,
        )

    def _time(self, seconds: float, is_end: bool = False) -> float:
        return self._map.get_original_time(seconds, is_end=is_end)


def whole(samples: np.ndarray) -> Piece:
    return Piece((Span(0, len(samples)),))


def pack_spans(spans: list[Span], max_seconds: float) -> list[Piece]:
    """Greedily groups consecutive speech spans into pieces of at most `max_seconds` of speech."""
    limit = int(max_seconds * SAMPLE_RATE)
    groups: list[list[Span]] = []
    speech = 0
    for span in spans:
        length = span.end - span.start
        if groups and speech + length <= limit:
            groups[-1].append(span)
            speech += length
        else:
            groups.append([span])
            speech = length
    return [Piece(tuple(group)) for group in groups]
