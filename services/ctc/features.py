"""The model's inputs: raw waveform (`input_values`, wav2vec2) or filter-bank features
(`input_features`, w2v-BERT), made once for a whole piece of audio.

Extracting once and windowing the result, rather than extracting per window, keeps the
extractor's normalisation (over the whole utterance) the same however the audio is windowed.
"""

from __future__ import annotations

import numpy as np
import torch

from services.core.backend import SAMPLE_RATE
from services.ctc.windows import FrameGeometry

# Shorter audio is padded with silence: the models' first layers need a few frames.
MIN_SAMPLES = SAMPLE_RATE // 10
# Input length used to measure how many input units make one output frame.
_PROBE_UNITS = 1_000_000


class FeatureReader:
    def __init__(self, feature_extractor, model: torch.nn.Module):
        self._extractor = feature_extractor
        self.input_name: str = feature_extractor.model_input_names[0]
        self.geometry = FrameGeometry(self._samples_per_unit(), _units_per_frame(model))

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Units of `audio` along the first axis: (units,) samples or (units, dims) features."""
        if len(audio) < MIN_SAMPLES:
            audio = np.pad(audio, (0, MIN_SAMPLES - len(audio)))
        extracted = self._extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np")
        return np.asarray(extracted[self.input_name][0], dtype=np.float32)

    def _samples_per_unit(self) -> int:
        """1 for waveform input; the feature hop (320 samples for w2v-BERT) for features."""
        rng = np.random.default_rng(0)
        one, two = (
            len(self(rng.standard_normal(n * SAMPLE_RATE).astype(np.float32))) for n in (1, 2)
        )
        return round(SAMPLE_RATE / (two - one))


def _units_per_frame(model: torch.nn.Module) -> int:
    """Input units per output frame: the stride of the model's convolutions and adapter."""
    frames = int(model._get_feat_extract_output_lengths(torch.tensor(_PROBE_UNITS)))
    return round(_PROBE_UNITS / frames)
