"""Helpers for the tests of the drop-in APIs (Google, Riva, OpenAI): the clips they use, their
reference transcripts, raw PCM sent at the pace of speech, and checks on word timings."""

from __future__ import annotations

import time
from collections.abc import Iterator

from tests.support import manifest, wer
from tests.test_streaming import pcm16
from tests.test_whisper_en import PER_CLIP_WER

JFK = "en/jfk.flac"
JFK_SECONDS = 11.0
READING = "en/librispeech_2412-153948-0000.flac"  # 11.7 s of reading, with pauses
CHUNK_BYTES = 3200  # 100 ms of 16 kHz 16-bit mono
PACE_S = 0.1  # the pace of speech, so interims come however slow the machine decodes

__all__ = ["JFK", "JFK_SECONDS", "PER_CLIP_WER", "READING", "pcm16", "wer"]


def reference(path: str) -> str:
    return next(row["transcript"] for row in manifest() if row["path"] == path)


def paced(audio: bytes, chunk: int = CHUNK_BYTES, pace_s: float = PACE_S) -> Iterator[bytes]:
    for start in range(0, len(audio), chunk):
        time.sleep(pace_s)
        yield audio[start : start + chunk]


def check_word_timings(words: list[tuple[str, float, float]], duration_s: float) -> None:
    """Each word starts before it ends, no word starts before the last one ended (but for a
    few ms of overlap), and all lie inside the clip."""
    assert words, "no words came back"
    last_end = 0.0
    for word, start, end in words:
        assert word.strip(), words
        assert last_end - 0.05 <= start <= end <= duration_s + 0.05, (word, start, end, last_end)
        last_end = end
    assert last_end > duration_s / 2, "the words cover less than half the clip"
