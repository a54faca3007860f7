"""A pyannote.audio speaker-diarization pipeline as the diarization backend, used when
`model` names one (a local folder or config.yaml, or a hub id).

pyannote.audio is an optional extra (`pip install 'stt-suite[pyannote]'`): it brings its own
segmentation and embedding models and their dependencies. Without it, loading fails with a
message that says so, and the service never turns ready.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

import numpy as np

from services.core.backend import BackendInfo
from services.core.cancellation import Cancellation
from services.core.speakers import SpeakerBounds
from services.core.vad import Span
from services.diarization.backend import SAMPLE_RATE, Diarization, DiarizationBackend, Turn
from services.diarization.settings import DiarizationSettings


class PyannoteBackend(DiarizationBackend):
    uses_speech_spans = False  # the pipeline finds speech with its own segmentation model

    def __init__(self, settings: DiarizationSettings):
        self._settings = settings
        self._pipeline = None
        self._info: BackendInfo | None = None

    def load(self) -> None:
        try:
            import torch
            from pyannote.audio import Pipeline
        except ImportError as error:
            raise RuntimeError(
                f"the diarization model {self._settings.model!r} is a pyannote.audio pipeline, "
                "but pyannote.audio is not installed: pip install 'stt-suite[pyannote]', or set "
                "DIARIZATION_MODEL=resemblyzer for the embedded default"
            ) from error
        token = self._settings.hf_token or None
        # pyannote.audio 4 names the hub token `token`; 3.x named it `use_auth_token`.
        takes = inspect.signature(Pipeline.from_pretrained).parameters
        key = "token" if "token" in takes else "use_auth_token"
        pipeline = Pipeline.from_pretrained(self._settings.model, **{key: token})
        if pipeline is None:  # 3.x answers None instead of raising for a gated or missing id
            raise RuntimeError(
                f"no pyannote.audio pipeline could be loaded from {self._settings.model!r}"
            )
        device = self._settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        pipeline.to(torch.device(device))
        self._pipeline = pipeline
        self._info = BackendInfo(self._settings.model, device, "float32", ())

    @property
    def info(self) -> BackendInfo:
        if self._info is None:
            raise RuntimeError("the pyannote.audio pipeline is not loaded yet")
        return self._info

    def diarize(
        self,
        audio: np.ndarray,
        spans: list[Span],
        bounds: SpeakerBounds,
        cancellation: Cancellation,
    ) -> Diarization:
        import torch

        counts = (
            {"num_speakers": bounds.min_count}
            if bounds.min_count == bounds.max_count
            else {"min_speakers": bounds.min_count, "max_speakers": bounds.max_count}
        )
        waveform = {"waveform": torch.from_numpy(audio)[None], "sample_rate": SAMPLE_RATE}
        output = self._pipeline(waveform, hook=lambda *_, **__: cancellation.check(), **counts)
        # pyannote.audio 4 returns its exclusive (one speaker at a time) reading beside the
        # overlapping one; 3.x returns the overlapping annotation alone.
        annotation = getattr(output, "exclusive_speaker_diarization", output)
        segments = (
            (segment.start, segment.end, str(label))
            for segment, _, label in annotation.itertracks(yield_label=True)
        )
        return Diarization(exclusive_turns(segments))


def exclusive_turns(segments: Iterable[tuple[float, float, str]]) -> tuple[Turn, ...]:
    """Turns that never overlap, from segments that may: where two overlap, the one that began
    first keeps the floor until it ends. Speakers are numbered by first appearance."""
    turns: list[Turn] = []
    numbers: dict[str, int] = {}
    floor_end = 0.0
    for start, end, label in sorted(segments):
        start = max(start, floor_end)
        if end <= start:
            continue
        number = numbers.setdefault(label, len(numbers) + 1)
        if turns and turns[-1].speaker == number and turns[-1].end >= start:
            turns[-1] = Turn(turns[-1].start, end, number)
        else:
            turns.append(Turn(start, end, number))
        floor_end = end
    return tuple(turns)
