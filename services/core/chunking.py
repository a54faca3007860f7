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

from services.core.backend import SAMPLE_RATE, Alternative, Segment, Word
from services.core.errors import InvalidAudio
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
        alternatives = tuple(
            Alternative(a.text, a.confidence, self._words(a.words)) for a in segment.alternatives
        )
        return Segment(
            segment.text,
            self._time(segment.start),
            self._time(segment.end, True),
            segment.confidence,
            self._words(segment.words),
            alternatives,
        )

    def _words(self, words: tuple[Word, ...]) -> tuple[Word, ...]:
        return tuple(
            Word(w.text, self._time(w.start), self._time(w.end, True), w.confidence) for w in words
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


def one_utterance(spans: list[Span], max_seconds: float) -> list[Piece]:
    """All the speech as one piece, from the first span's start to the last one's end.

    Expected phrases are scored against everything the speaker said, so the audio must not be
    cut; speech longer than `max_seconds` is refused rather than scored in parts.
    """
    if not spans:
        return []
    seconds = (spans[-1].end - spans[0].start) / SAMPLE_RATE
    if seconds > max_seconds:
        raise InvalidAudio(
            f"speech_contexts phrases are scored against one utterance of at most "
            f"{max_seconds:.0f} s; this audio holds {seconds:.1f} s of speech"
        )
    return [Piece((Span(spans[0].start, spans[-1].end),))]
