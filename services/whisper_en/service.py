"""What `stt serve whisper_en` hosts: its settings class and its backend."""

from services.whisper_en.backend import WhisperBackend as Backend
from services.whisper_en.fetch import fetch
from services.whisper_en.settings import WhisperSettings as Settings

__all__ = ["Backend", "Settings", "fetch"]
