"""How a language's text is tidied for output and folded for comparison.

A service with its own script rules (arabic_words) subclasses `TextRules`; the default suits
Latin-script languages such as Hausa.
"""

from __future__ import annotations

import unicodedata

# Hausa writes its glottal stop with several apostrophe-like characters.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2018": "'", "`": "'"})


class TextRules:
    def display(self, text: str) -> str:
        """The text as returned to clients: canonical Unicode, single spaces."""
        return " ".join(unicodedata.normalize("NFC", text).split())

    def fold(self, text: str) -> str:
        """A key under which two spellings of the same words compare equal."""
        return self.display(text).casefold().translate(_APOSTROPHES)
