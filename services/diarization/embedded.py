"""The embedded default: Resemblyzer speaker embeddings of sliding windows over Silero VAD
speech, clustered with scikit-learn, smoothed into turns. Runs on CPU with no model hub."""

from __future__ import annotations

from importlib import metadata

import numpy as np

from services.core.backend import BackendInfo
from services.core.cancellation import Cancellation
from services.core.speakers import SpeakerBounds
from services.core.vad import Span
from services.diarization.backend import Diarization, DiarizationBackend
from services.diarization.clustering import cluster
from services.diarization.settings import EMBEDDED, DiarizationSettings
from services.diarization.turns import to_turns
from services.diarization.windows import SpeakerEncoder

# Resolution of turn boundaries: windows vote on frames this long.
FRAME_S = 0.1


class EmbeddedBackend(DiarizationBackend):
    def __init__(self, settings: DiarizationSettings):
        self._settings = settings
        self._encoder = SpeakerEncoder(_device(settings.device), settings.window_step_s)
        self._info: BackendInfo | None = None

    def load(self) -> None:
        if self._settings.cpu_threads:
            import torch

            torch.set_num_threads(self._settings.cpu_threads)
        self._encoder.load()
        version = metadata.version("resemblyzer")
        device = "cuda" if self._encoder.device.startswith("cuda") else "cpu"
        self._info = BackendInfo(f"{EMBEDDED}-{version}", device, "float32", ())

    @property
    def info(self) -> BackendInfo:
        if self._info is None:
            raise RuntimeError("the speaker encoder is not loaded yet")
        return self._info

    def diarize(
        self,
        audio: np.ndarray,
        spans: list[Span],
        bounds: SpeakerBounds,
        cancellation: Cancellation,
    ) -> Diarization:
        windows = self._encoder.windows(audio, spans, cancellation)
        cancellation.check()
        settings = self._settings
        labels = cluster(
            windows.embeddings, bounds, settings.distance_threshold, settings.max_cluster_windows
        )
        return Diarization(to_turns(windows, labels, spans, FRAME_S, settings.min_turn_s))


def _device(setting: str) -> str:
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
