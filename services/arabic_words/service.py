"""What `stt serve arabic_words` hosts: its settings class and the CTC backend with Arabic
text rules."""

from services.arabic_words.settings import ArabicWordsSettings as Settings
from services.arabic_words.text import ArabicText
from services.ctc.backend import CtcBackend
from services.ctc.fetch import fetch


class Backend(CtcBackend):
    text_rules = ArabicText()


__all__ = ["Backend", "Settings", "fetch"]
