"""Puts the diarization model where `stt serve diarization` will read it.

The embedded default needs nothing fetched: its encoder's weights ship in the `resemblyzer`
wheel, and their path is the answer. A pyannote.audio pipeline named by hub id is loaded
once, which downloads it and the models it names into the Hugging Face cache; a local
folder or file stays as it is.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from services.diarization.settings import EMBEDDED, DiarizationSettings


def fetch(settings: DiarizationSettings) -> str:
    if settings.model == EMBEDDED:
        return str(_packaged_weights())
    if Path(settings.model).exists():
        return settings.model
    from services.diarization.pipeline import PyannoteBackend

    try:
        PyannoteBackend(settings).load()
    except RuntimeError as error:  # pyannote.audio missing, or no pipeline at that id
        raise ValueError(str(error)) from error
    return settings.model


def _packaged_weights() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise ValueError("resemblyzer is not installed: pip install 'stt-suite[diarization]'")
    weights = Path(spec.origin).parent / "pretrained.pt"
    if not weights.is_file():
        raise OSError(f"the resemblyzer package holds no encoder weights at {weights}")
    return weights
