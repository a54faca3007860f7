"""Conversations of two synthetic voices, made with espeak-ng, and their reference turns:
what the diarization tests and the diarization benchmark hear, with the truth to score it."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np

from tests.support import espeak

RATE = 22_050  # espeak-ng's own output rate
# Two voices apart in timbre and pitch: a low male and a high female variant.
VOICES = (("en+m3", 35), ("en+f3", 75))
LINES = (
    "The meeting will now come to order. Let us begin with the budget for next year.",
    "Thank you. I think we should spend less on travel and more on training.",
    "That is a fair point, but travel brings in new customers every single year.",
    "Perhaps we can agree on a smaller cut to both budgets then.",
    "Agreed. Let us write that down and move on to the next item on the list.",
    "The next item is the office move. It is planned for the end of the spring.",
)
PAUSE_S = 0.6
# A sample this loud or louder is speech (for the reference turns), about -40 dBFS.
SPEECH_LEVEL = 0.01


@dataclass(frozen=True)
class Conversation:
    wav: bytes  # 16-bit mono WAV
    turns: tuple[tuple[float, float, str], ...]  # (start s, end s, speaker), the truth
    lines: tuple[str, ...]  # what each turn says

    @property
    def seconds(self) -> float:
        return len(self.wav) / 2 / RATE


def conversation(lines: tuple[str, ...] = LINES, voices=VOICES) -> Conversation:
    """The lines spoken in turn by the voices, `PAUSE_S` apart; a turn's reference bounds are
    its first and last samples louder than `SPEECH_LEVEL`."""
    pieces, turns, at = [], [], 0
    pause = np.zeros(round(PAUSE_S * RATE), dtype=np.int16)
    for index, line in enumerate(lines):
        voice, pitch = voices[index % len(voices)]
        samples = _samples(espeak(line, voice=voice, pitch=pitch))
        loud = np.flatnonzero(np.abs(samples) >= SPEECH_LEVEL * 32768)
        bounds = (float(at + loud[0]) / RATE, float(at + loud[-1]) / RATE)
        turns.append((*bounds, "AB"[index % len(voices)]))
        pieces += [samples, pause]
        at += len(samples) + len(pause)
    return Conversation(_wav(np.concatenate(pieces)), tuple(turns), tuple(lines))


def _samples(wav_bytes: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(_sized(wav_bytes))) as reader:
        assert reader.getframerate() == RATE and reader.getnchannels() == 1
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


def _sized(wav_bytes: bytes) -> bytes:
    """espeak-ng streams its WAV with no data size; the wave module needs a real one."""
    data = wav_bytes.index(b"data") + 8
    size = len(wav_bytes) - data
    head = bytearray(wav_bytes[:data])
    head[4:8] = (len(wav_bytes) - 8).to_bytes(4, "little")
    head[data - 4 : data] = size.to_bytes(4, "little")
    return bytes(head) + wav_bytes[data:]


def _wav(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


def der(reference, hypothesis, collar: float = 0.5) -> float:
    """Diarization error rate (pyannote.metrics) of `(start, end, speaker)` turns. `collar` is
    the total width left out of scoring around each reference boundary: 0.5 s is 0.25 s each
    side, as in the NIST Rich Transcription evaluations."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(turns) -> Annotation:
        made = Annotation()
        for start, end, speaker in turns:
            made[Segment(start, end)] = speaker
        return made

    truth, found = annotation(reference), annotation(hypothesis)
    # Scored over everything either side covers (what pyannote.metrics would guess, and warn).
    extent = truth.get_timeline().union(found.get_timeline()).extent()
    return DiarizationErrorRate(collar=collar)(truth, found, uem=Timeline([extent]))
