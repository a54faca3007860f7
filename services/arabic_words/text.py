"""Arabic text rules: what is removed for output, and what is folded for comparison.

Output (`display`): compatibility forms to their letters (NFKC, e.g. presentation forms and
the lam-alef ligature), diacritics (harakat, tanwin, shadda, sukun, superscript alef, Quranic
marks) and tatweel removed, spaces collapsed. Comparison (`fold`) also writes every alef form
(hamza above or below, madda, wasla) as bare alef, hamza on waw as waw and on yeh as yeh,
alef maqsura as yeh, taa marbuta as heh, Persian kaf and yeh as Arabic ones, and
Arabic-Indic digits as ASCII digits: spellings a learner or a keyboard varies on.
"""

from __future__ import annotations

import re
import unicodedata

from services.ctc.text import TextRules

TATWEEL = "\u0640"
# Harakat, tanwin, shadda, sukun, hamza and madda marks, superscript alef, Quranic marks.
_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed]")
_FOLDS = str.maketrans(
    {
        "\u0623": "\u0627",  # alef with hamza above
        "\u0625": "\u0627",  # alef with hamza below
        "\u0622": "\u0627",  # alef with madda
        "\u0671": "\u0627",  # alef wasla
        "\u0624": "\u0648",  # waw with hamza
        "\u0626": "\u064a",  # yeh with hamza
        "\u0649": "\u064a",  # alef maqsura
        "\u0629": "\u0647",  # taa marbuta
        "\u06a9": "\u0643",  # Persian kaf
        "\u06cc": "\u064a",  # Persian yeh
        **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + d): str(d) for d in range(10)},  # Eastern Arabic-Indic digits
    }
)


class ArabicText(TextRules):
    def display(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text)
        text = _MARKS.sub("", text).replace(TATWEEL, "")
        return " ".join(text.split())

    def fold(self, text: str) -> str:
        return self.display(text).translate(_FOLDS).casefold()
