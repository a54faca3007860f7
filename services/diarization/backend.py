"""The contract between the diarization service and a diarization model: plain data in and out.

Like a language service's `Backend`, a diarization backend knows nothing of gRPC. The server
calls `load` and `warm_up` once, then `diarize` from worker threads, at most
`max_concurrency` at a time, with 16 kHz mono float32 audio.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from services.core.backend import SAMPLE_RATE, BackendInfo
from services.core.cancellation import Cancellation
from services.core.speakers import SpeakerBounds
from services.core.vad import Span

__all__ = ["SAMPLE_RATE", "BackendInfo", "Diarization", "DiarizationBackend", "Turn"]


@dataclass(frozen=True)
class Turn:
    """A stretch of audio spoken by one speaker; times in seconds, speakers numbered from 1 in
    the order they first speak."""

    start: float
    end: float
    speaker: int


@dataclass(frozen=True)
class Diarization:
    turns: tuple[Turn, ...]  # in time order, not overlapping

    @property
    def speaker_count(self) -> int:
        return len({turn.speaker for turn in self.turns})


class DiarizationBackend(abc.ABC):
    #: Whether `diarize` wants the core's Silero VAD speech spans (a backend with its own
    #: speech detection, such as a pyannote.audio pipeline, does not).
    uses_speech_spans: bool = True

    @abc.abstractmethod
    def load(self) -> None:
        """Loads the model; called once, before any other call, off the event loop."""

    @property
    @abc.abstractmethod
    def info(self) -> BackendInfo:
        """Model id, device and precision; valid after `load`."""

    @abc.abstractmethod
    def diarize(
        self,
        audio: np.ndarray,
        spans: list[Span],
        bounds: SpeakerBounds,
        cancellation: Cancellation,
    ) -> Diarization:
        """Who spoke when in `audio`, within `bounds` (already resolved: both set, min <= max);
        `spans` are the speech regions when `uses_speech_spans`, else empty."""

    def warm_up(self) -> None:
        """One diarization of a few seconds of noise, so no request pays for lazy set-up."""
        rng = np.random.default_rng(0)
        noise = (0.05 * rng.standard_normal(4 * SAMPLE_RATE)).astype(np.float32)
        spans = [Span(0, len(noise))] if self.uses_speech_spans else []
        self.diarize(noise, spans, SpeakerBounds(1, 2), Cancellation())
