"""Finds where utterances begin and end in a live stream, from per-window VAD probabilities.

Positions are absolute sample indexes from the start of the stream. Hysteresis as in Silero's
own rule: speech starts above `threshold` and continues while the probability stays above
`neg_threshold`; an utterance ends after `end_silence_ms` below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.backend import SAMPLE_RATE
from services.core.vad import StreamingVad

WINDOW = StreamingVad.WINDOW


@dataclass(frozen=True)
class EndpointSettings:
    threshold: float = 0.5
    end_silence_ms: int = 250
    min_speech_ms: int = 96
    pad_ms: int = 200

    @property
    def neg_threshold(self) -> float:
        return max(0.01, self.threshold - 0.15)


@dataclass(frozen=True)
class SpeechStarted:
    start: int  # padded utterance start


@dataclass(frozen=True)
class SpeechStopped:
    end: int  # padded utterance end


class Endpointer:
    def __init__(self, settings: EndpointSettings):
        self._s = settings
        self._pad = settings.pad_ms * SAMPLE_RATE // 1000
        self._min_speech = settings.min_speech_ms * SAMPLE_RATE // 1000
        self._end_silence = settings.end_silence_ms * SAMPLE_RATE // 1000
        self.position = 0  # samples judged so far
        self.in_speech = False
        self.last_speech = 0  # end of the last window judged as speech
        # End of the last window above `threshold`: the speech heard for sure. Past it the
        # probability only decays (Silero's trails 100 to 250 ms behind the last word).
        self.last_voiced = 0
        self._run = 0  # consecutive speech samples while not yet in speech

    @property
    def pause(self) -> int:
        """Samples of silence since the last speech, while inside an utterance."""
        return self.position - self.last_speech if self.in_speech else 0

    @property
    def quiet(self) -> int:
        """Samples since the last sure speech, while inside an utterance: a pause may be
        starting, before the probability has decayed enough to say so."""
        return self.position - self.last_voiced if self.in_speech else 0

    def padded_end(self, limit: int) -> int:
        return min(limit, self.last_speech + self._pad)

    def update(self, probabilities) -> list[SpeechStarted | SpeechStopped]:
        events: list[SpeechStarted | SpeechStopped] = []
        for probability in probabilities:
            self.position += WINDOW
            if not self.in_speech:
                self._run = self._run + WINDOW if probability >= self._s.threshold else 0
                if self._run >= self._min_speech:
                    self.in_speech = True
                    self.last_speech = self.last_voiced = self.position
                    events.append(SpeechStarted(max(0, self.position - self._run - self._pad)))
            elif probability >= self._s.neg_threshold:
                self.last_speech = self.position
                if probability >= self._s.threshold:
                    self.last_voiced = self.position
            elif self.position - self.last_speech >= self._end_silence:
                self.in_speech, self._run = False, 0
                events.append(SpeechStopped(self.last_speech + self._pad))
        return events
