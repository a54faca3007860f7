"""What the CTC service tests share: the models they run on, settings, and timing checks.

Every test runs on tiny random models of both architectures, made at test time. Pointing
STT_TEST_HAUSA_MODEL or STT_TEST_ARABIC_MODEL at a checkpoint folder on disk runs the same
tests on that real model too; without them those cases skip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from services import registry
from services.ctc.model import CtcModel
from services.ctc.settings import CtcSettings


@dataclass(frozen=True)
class Case:
    id: str
    service: str
    clip: str  # real speech from ../shared/audio/ (there is no Hausa clip: any speech will do)
    tiny: str = ""  # "w2v_bert" or "wav2vec2": the tiny model's architecture
    env: str = ""  # for a real checkpoint: the variable that names its folder

    @property
    def module(self):
        return registry.load(self.service)

    @property
    def language(self) -> str:
        return "ha" if self.service == "hausa_stt" else "ar"


CASES = [
    Case("w2v-bert", "hausa_stt", "en/librispeech_1995-1837-0001.wav", tiny="w2v_bert"),
    Case("wav2vec2", "arabic_words", "ar/keywords_hummus_coffee_octopus_toaster.wav", "wav2vec2"),
    Case(
        "hausa-checkpoint",
        "hausa_stt",
        "en/librispeech_1995-1837-0001.wav",
        env="STT_TEST_HAUSA_MODEL",
    ),
    Case(
        "arabic-checkpoint",
        "arabic_words",
        "ar/keywords_hummus_coffee_octopus_toaster.wav",
        env="STT_TEST_ARABIC_MODEL",
    ),
]
TINY_CASES = [case for case in CASES if case.tiny]


class TinyModels:
    """Tiny models, each made once per session on first use."""

    def __init__(self, root: Path):
        self._root = root
        self._made: dict[tuple[str, bool], Path] = {}

    def get(self, architecture: str, local: bool = False) -> Path:
        key = (architecture, local)
        if key not in self._made:
            from tests import ctc_models

            build = getattr(ctc_models, architecture)
            folder = self._root / f"{architecture}{'-local' if local else ''}"
            self._made[key] = build(folder, local=local)
        return self._made[key]


def model_dir(case: Case, tiny: TinyModels, local: bool = False) -> Path:
    """The case's model folder. `local`: the tiny model with attention muted (see
    ctc_models.mute_attention); a real checkpoint is used as it is."""
    if case.tiny:
        return tiny.get(case.tiny, local)
    folder = os.environ.get(case.env, "")
    if not folder:
        pytest.skip(f"set {case.env} to a local checkpoint folder to run this test on it")
    if not Path(folder).is_dir():
        pytest.skip(f"{case.env}={folder} is not a folder")
    return Path(folder)


def settings(case: Case, model: Path, **overrides) -> CtcSettings:
    defaults = dict(model=str(model), grpc_port=0, http_port=0, cpu_threads=2)
    return case.module.Settings(**{**defaults, **overrides})


def seconds(duration) -> float:
    return duration.ToTimedelta().total_seconds()


def check_timings(response, audio_seconds: float) -> list[tuple[str, float, float]]:
    """Asserts results and words are in time order, inside the audio, with confidences in
    [0, 1]; returns every word with its times."""
    words, last_end = [], 0.0
    for result in response.results:
        start, end = seconds(result.result_start_offset), seconds(result.result_end_offset)
        assert last_end - 1e-6 <= start <= end <= audio_seconds + 1e-6
        best = result.alternatives[0]
        assert 0 <= best.confidence <= 1
        for word in best.words:
            w_start, w_end = seconds(word.start_offset), seconds(word.end_offset)
            assert last_end - 1e-6 <= w_start < w_end <= audio_seconds + 1e-6, word
            assert start - 1e-6 <= w_start and w_end <= end + 1e-6
            assert 0 <= word.confidence <= 1 and word.word
            words.append((word.word, w_start, w_end))
            last_end = w_end
        last_end = max(last_end, end)
    return words


# float16 faults, made on purpose: the fallback to float32 must hide each from requests.
class FailsWhenArmed(CtcModel):
    """float16 works until the test arms the model (after its warm-up, however many passes
    that takes on the device), then every float16 pass is broken."""

    armed = False

    def _run(self, batch):
        logits = super()._run(batch)
        if self.dtype == torch.float16 and self.armed:
            return self.broken(logits)
        return logits


class RaisesInHalf(FailsWhenArmed):
    def broken(self, logits):
        raise RuntimeError("forced: float16 kernel missing")


class NonFiniteInHalf(FailsWhenArmed):
    def broken(self, logits):
        return logits * float("inf")


class WontLoadInHalf(CtcModel):
    def _move(self, dtype):
        if dtype == torch.float16:
            raise RuntimeError("forced: float16 load failure")
        super()._move(dtype)


def with_model(case, model_class):
    return type(
        f"{model_class.__name__}Backend", (case.module.Backend,), {"model_class": model_class}
    )


def arm(backend) -> None:
    """Breaks float16 from now on in a backend made by `with_model` with a FailsWhenArmed."""
    backend._model.armed = True
