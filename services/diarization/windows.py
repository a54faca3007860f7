"""Speaker embeddings of sliding windows over the speech regions, from Resemblyzer's encoder.

The encoder (a 3-layer LSTM over 40 mel bands, Apache-2.0) and its trained weights ship in the
`resemblyzer` wheel, so nothing is fetched at run time. Each speech region is heard as
overlapping windows of 1.6 s (the encoder's fixed input), one every `step_s`; a region shorter
than a window gives one window, padded with silence.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from services.core.backend import SAMPLE_RATE
from services.core.cancellation import Cancellation
from services.core.vad import Span

# Resemblyzer's own loudness target for the encoder's input: quiet speech is raised to it.
TARGET_DBFS = -30
# Below this share of a window, the last window of a region is dropped (the rest is heard).
MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class Windows:
    """`starts` and `ends` in samples, `embeddings` L2-normalised, one row per window."""

    starts: np.ndarray
    ends: np.ndarray
    embeddings: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)


class SpeakerEncoder:
    def __init__(self, device: str, step_s: float):
        self._device = device
        self._rate = 1.0 / step_s  # windows per second, as Resemblyzer counts them
        self._encoder = None

    def load(self) -> None:
        # Imported here: the package pulls in librosa and torch, which only this needs. Its
        # imports warn of APIs they use (pkg_resources, scipy.ndimage.morphology) on every
        # start: notices for the package's maintainers, not for this service's logs.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
            from resemblyzer import VoiceEncoder

        self._encoder = VoiceEncoder(self._device, verbose=False)

    @property
    def device(self) -> str:
        return str(self._encoder.device) if self._encoder is not None else self._device

    def windows(self, audio: np.ndarray, spans: list[Span], cancellation: Cancellation) -> Windows:
        from resemblyzer import normalize_volume

        starts, ends, embeddings = [], [], []
        for span in spans:
            cancellation.check()
            speech = normalize_volume(audio[span.start : span.end], TARGET_DBFS, increase_only=True)
            _, partials, slices = self._encoder.embed_utterance(
                speech, return_partials=True, rate=self._rate, min_coverage=MIN_COVERAGE
            )
            for embedding, piece in zip(partials, slices, strict=True):
                starts.append(span.start + piece.start)
                ends.append(min(span.end, span.start + piece.stop))
                embeddings.append(embedding)
        if not embeddings:
            return Windows(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 256), np.float32))
        return Windows(np.array(starts), np.array(ends), np.array(embeddings, dtype=np.float32))


def seconds(samples: int) -> float:
    return samples / SAMPLE_RATE
