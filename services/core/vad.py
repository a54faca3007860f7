"""Voice activity detection with the Silero VAD model that faster-whisper ships (ONNX).

Finds where people speak, so silence is never sent to the model and long audio is cut only in
pauses, never inside a word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps, get_vad_model

from services.core.backend import SAMPLE_RATE


@dataclass(frozen=True)
class Span:
    """Speech from `start` to `end`, in samples."""

    start: int
    end: int


@dataclass(frozen=True)
class VadSettings:
    threshold: float = 0.5
    min_silence_ms: int = 500
    speech_pad_ms: int = 200
    min_speech_ms: int = 100


class VoiceActivityDetector:
    def __init__(self, settings: VadSettings):
        self._settings = settings

    def load(self) -> None:
        """Loads the ONNX model now rather than on the first request."""
        get_vad_model()

    def speech_spans(self, audio: np.ndarray, max_span_seconds: float) -> list[Span]:
        """Speech regions, each at most `max_span_seconds`; a longer one is split at its
        longest inner pause (Silero's rule), or hard at the limit when it has none."""
        options = VadOptions(
            threshold=self._settings.threshold,
            min_silence_duration_ms=self._settings.min_silence_ms,
            speech_pad_ms=self._settings.speech_pad_ms,
            min_speech_duration_ms=self._settings.min_speech_ms,
            max_speech_duration_s=max_span_seconds,
        )
        stamps = get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)
        return [Span(int(s["start"]), int(s["end"])) for s in stamps]


class StreamingVad:
    """Silero speech probabilities for audio that arrives piece by piece.

    Feeds the same ONNX model window by window, carrying its recurrent state and the context
    samples across calls, so each new window costs one step rather than a re-run over the
    whole utterance.
    """

    WINDOW = 512  # samples per probability at 16 kHz (32 ms), the model's fixed input
    CONTEXT = 64

    def __init__(self):
        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self.CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of every whole window completed by `samples`, in order."""
        self._pending = np.concatenate([self._pending, samples])
        count = len(self._pending) // self.WINDOW
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        windows = self._pending[: count * self.WINDOW].reshape(count, self.WINDOW)
        self._pending = self._pending[count * self.WINDOW :]
        contexts = np.vstack([self._context, windows[:-1, -self.CONTEXT :]])
        self._context = windows[-1, -self.CONTEXT :].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        probs, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        return np.asarray(probs, dtype=np.float32).reshape(-1)
