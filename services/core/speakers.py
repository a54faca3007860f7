"""Who said which words: recognition results labelled with the speaker turns of diarization.

Shared by everything that joins a transcript with `stt.v1.Diarization` turns (the router's
Recognize, the job workers). Words need offsets: whoever asks a language service for the
transcript asks for word time offsets when diarization is on.

`check_bounds` is the one reading of `SpeakerDiarizationConfig`'s speaker-count bounds, so the
router refuses a bad config before it sends audio anywhere, with the same message the
diarization service gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stt.v1 import stt_pb2

from services.core.errors import InvalidConfig

FIELD = "config.diarization_config"


@dataclass(frozen=True)
class SpeakerBounds:
    """Speaker-count bounds of one request; 0 leaves a bound to the service."""

    min_count: int = 0
    max_count: int = 0


def check_bounds(config: stt_pb2.SpeakerDiarizationConfig, most: int) -> SpeakerBounds:
    """The request's bounds, or `InvalidConfig` naming the field: negative, min above max, or
    above `most`, the largest count the service finds."""
    low, high = config.min_speaker_count, config.max_speaker_count
    for name, value in (("min_speaker_count", low), ("max_speaker_count", high)):
        if value < 0:
            raise InvalidConfig(
                f"{FIELD}.{name} must be >= 0 (0: the service decides), got {value}"
            )
        if value > most:
            raise InvalidConfig(
                f"{FIELD}.{name} is {value}; the diarization service finds at most {most} speakers"
            )
    if low and high and low > high:
        raise InvalidConfig(
            f"{FIELD}.min_speaker_count ({low}) is greater than max_speaker_count ({high})"
        )
    return SpeakerBounds(low, high)


@dataclass(frozen=True)
class _Turn:
    start: float
    end: float
    label: str


def label_results(
    results: Sequence[stt_pb2.SpeechRecognitionResult], turns: Sequence[stt_pb2.SpeakerTurn]
) -> list[stt_pb2.SpeechRecognitionResult]:
    """Each word labelled with the speaker of the turn it overlaps most (the nearest turn when
    it overlaps none), and each result split where the speaker changes, so that every result
    holds one speaker's words.

    Only the top alternative can be split by its words: a result that is split keeps only
    its top alternative; one that is not keeps all of them, every one labelled. A result
    without words, or any result when there are no turns, is returned as it came.
    """
    spans = sorted(
        (_Turn(_seconds(t.start_offset), _seconds(t.end_offset), t.speaker_label) for t in turns),
        key=lambda turn: (turn.start, turn.end),
    )
    labelled: list[stt_pb2.SpeechRecognitionResult] = []
    for result in results:
        if not spans or not result.alternatives or not result.alternatives[0].words:
            labelled.append(_copy(result))
            continue
        labelled.extend(_split(result, spans))
    return labelled


def _split(
    result: stt_pb2.SpeechRecognitionResult, spans: list[_Turn]
) -> list[stt_pb2.SpeechRecognitionResult]:
    top = result.alternatives[0]
    labels = [_speaker_of(word, spans) for word in top.words]
    runs = _runs(labels)
    if len(runs) == 1:
        whole = _copy(result)
        for alternative in whole.alternatives:
            for word in alternative.words:
                word.speaker_label = _speaker_of(word, spans)
        return [whole]
    pieces = []
    for index, (first, last) in enumerate(runs):
        words = top.words[first : last + 1]
        piece = stt_pb2.SpeechRecognitionResult(
            channel_tag=result.channel_tag, language_code=result.language_code
        )
        alternative = piece.alternatives.add(
            transcript=" ".join(w.word for w in words), confidence=top.confidence
        )
        for word in words:
            alternative.words.add().CopyFrom(word)
            alternative.words[-1].speaker_label = labels[first]
        # The first piece keeps the result's start and the last its end (the padding around
        # the speech); the cuts between pieces fall on the words' own offsets.
        piece.result_start_offset.CopyFrom(
            result.result_start_offset if index == 0 else words[0].start_offset
        )
        piece.result_end_offset.CopyFrom(
            result.result_end_offset if index == len(runs) - 1 else words[-1].end_offset
        )
        pieces.append(piece)
    return pieces


def _runs(labels: list[str]) -> list[tuple[int, int]]:
    """(first, last) word indices of each stretch of one speaker."""
    runs: list[tuple[int, int]] = []
    for index, label in enumerate(labels):
        if runs and labels[runs[-1][1]] == label:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


def _speaker_of(word: stt_pb2.WordInfo, spans: list[_Turn]) -> str:
    start, end = _seconds(word.start_offset), _seconds(word.end_offset)
    end = max(end, start)
    best, best_overlap = None, 0.0
    for turn in spans:
        overlap = min(end, turn.end) - max(start, turn.start)
        if overlap > best_overlap:
            best, best_overlap = turn, overlap
    if best is not None:
        return best.label
    # No turn overlaps the word (it fell in a pause, or has no duration): the nearest turn.
    middle = (start + end) / 2
    return min(spans, key=lambda turn: _distance(middle, turn)).label


def _distance(point: float, turn: _Turn) -> float:
    if point < turn.start:
        return turn.start - point
    if point > turn.end:
        return point - turn.end
    return 0.0


def _copy(result: stt_pb2.SpeechRecognitionResult) -> stt_pb2.SpeechRecognitionResult:
    copied = stt_pb2.SpeechRecognitionResult()
    copied.CopyFrom(result)
    return copied


def _seconds(value) -> float:
    return value.seconds + value.nanos / 1e9
