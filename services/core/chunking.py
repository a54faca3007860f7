"""Cuts long audio into pieces a model handles well, only where nobody is speaking.

The old service cut at fixed times with overlap and joined the texts, which doubled words at
every join. Here a piece is a run of whole VAD speech spans: a join always falls in a pause, so
no word is on both sides of it and none is lost between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.backend import SAMPLE_RATE
from services.core.errors import InvalidAudio
from services.core.vad import Span


@dataclass(frozen=True)
class Piece:
    """Samples [start, end) of the request audio, sent to the model as one unit."""

    start: int
    end: int

    @property
    def offset_seconds(self) -> float:
        return self.start / SAMPLE_RATE


def pack_spans(spans: list[Span], max_seconds: float) -> list[Piece]:
    """Greedily groups consecutive speech spans into pieces no longer than `max_seconds`.

    A piece runs from its first span's start to its last span's end, keeping the short pauses
    between them so the model hears natural context and its timings stay true.
    """
    limit = int(max_seconds * SAMPLE_RATE)
    pieces: list[Piece] = []
    for span in spans:
        if pieces and span.end - pieces[-1].start <= limit:
            pieces[-1] = Piece(pieces[-1].start, span.end)
        else:
            pieces.append(Piece(span.start, span.end))
    return pieces


def one_utterance(spans: list[Span], max_seconds: float) -> list[Piece]:
    """All the speech as one piece, from the first span's start to the last one's end.

    Expected phrases are scored against everything the speaker said, so the audio must not be
    cut; speech longer than `max_seconds` is refused rather than scored in parts.
    """
    if not spans:
        return []
    piece = Piece(spans[0].start, spans[-1].end)
    seconds = (piece.end - piece.start) / SAMPLE_RATE
    if seconds > max_seconds:
        raise InvalidAudio(
            f"speech_contexts phrases are scored against one utterance of at most "
            f"{max_seconds:.0f} s; this audio holds {seconds:.1f} s of speech"
        )
    return [piece]
