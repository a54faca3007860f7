"""One diarization in plain Python: decode the audio, find speech, tell the speakers apart.

It runs on an inference thread and knows nothing of gRPC; the servicer translates messages and
holds the gate around `run`.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core import audio as audio_mod
from services.core.cancellation import Cancellation
from services.core.metrics import ServiceMetrics
from services.core.recognizer import stage
from services.core.speakers import SpeakerBounds
from services.core.vad import VoiceActivityDetector
from services.diarization.backend import Diarization, DiarizationBackend

# Longest speech region heard as one: a longer one is cut at its longest inner pause.
MAX_SPAN_S = 30.0


@dataclass(frozen=True)
class DiarizationJob:
    content: bytes
    audio: audio_mod.AudioSpec
    bounds: SpeakerBounds  # resolved: both set, min <= max


@dataclass(frozen=True)
class DiarizationResult:
    diarization: Diarization
    audio_seconds: float


class Diarizer:
    def __init__(
        self,
        backend: DiarizationBackend,
        vad: VoiceActivityDetector,
        limits: audio_mod.AudioLimits,
        metrics: ServiceMetrics,
    ):
        self._backend = backend
        self._vad = vad
        self._limits = limits
        self._metrics = metrics

    def run(self, job: DiarizationJob, cancellation: Cancellation) -> DiarizationResult:
        with stage(self._metrics, "decode"):
            decoded = audio_mod.decode(job.content, job.audio, self._limits)
        cancellation.check()
        spans = []
        if self._backend.uses_speech_spans:
            with stage(self._metrics, "vad"):
                spans = self._vad.speech_spans(decoded.samples, MAX_SPAN_S)
            if not spans:  # no speech: nobody spoke
                return DiarizationResult(Diarization(()), decoded.duration)
        with stage(self._metrics, "inference"):
            diarization = self._backend.diarize(decoded.samples, spans, job.bounds, cancellation)
        return DiarizationResult(diarization, decoded.duration)
