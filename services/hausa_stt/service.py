"""What `stt serve hausa_stt` hosts: its settings class and the shared CTC backend."""

from services.ctc.backend import CtcBackend as Backend
from services.ctc.fetch import fetch
from services.hausa_stt.settings import HausaSettings as Settings

__all__ = ["Backend", "Settings", "fetch"]
