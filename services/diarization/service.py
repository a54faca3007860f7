"""What `stt serve diarization` hosts: its settings, its backend and its server; and what
`stt fetch diarization` runs."""

from __future__ import annotations

from services.diarization.backend import DiarizationBackend
from services.diarization.fetch import fetch
from services.diarization.server import DiarizationServer as Server
from services.diarization.settings import EMBEDDED
from services.diarization.settings import DiarizationSettings as Settings

__all__ = ["Backend", "Server", "Settings", "fetch"]


def Backend(settings: Settings) -> DiarizationBackend:
    """The embedded default, or a pyannote.audio pipeline when `model` names one (a factory
    under the name the registry looks for)."""
    if settings.model == EMBEDDED:
        from services.diarization.embedded import EmbeddedBackend

        return EmbeddedBackend(settings)
    from services.diarization.pipeline import PyannoteBackend

    return PyannoteBackend(settings)
