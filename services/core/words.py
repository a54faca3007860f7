"""A word as Google's and Riva's word lists carry it: the bare word, without the punctuation
that a model such as Whisper writes around it (`Bridge?`, `"Hello,`), while the transcript
keeps its punctuation.

What belongs to the word stays: inner apostrophes, hyphens and dots (`don't`, `well-known`,
`U.S.`, `3.5`), the final dot of an initialism (`U.S.`), a leading currency sign or sign of a
number (`$5`, `-3`), a trailing percent or currency sign after a number (`50%`, `5€`), the
apostrophe of a plural possessive (`students'`) and of a decade (`'90s`).
"""

from __future__ import annotations

import re
import unicodedata

# Dots between single letters, with the last dot: U.S., e.g., U.S.A.
_INITIALISM = re.compile(r"(?:[^\W\d_]\.){2,}")
_APOSTROPHES = "'\u2019"
_SIGNS = "+-\u2212"
_AFTER_NUMBER = "%\u2030\u2031"


def bare_word(token: str) -> str:
    """`token` without the punctuation around it; "" when nothing of a word is left (a dash
    or an ellipsis alone), which the caller drops from the word list."""
    text = token.strip()
    start, end = 0, len(text)
    while start < end and _strip_leading(text, start, end):
        start += 1
    while end > start and _strip_trailing(text, start, end):
        end -= 1
    return text[start:end]


def _strip_leading(text: str, start: int, end: int) -> bool:
    char = text[start]
    if not _is_mark(char):
        return False
    following = text[start + 1] if start + 1 < end else ""
    if char in _APOSTROPHES and following.isdigit():  # '90s
        return False
    if char in _SIGNS and following.isdigit():  # -3, +1
        return False
    return not (unicodedata.category(char) == "Sc" and following.isdigit())  # $5


def _strip_trailing(text: str, start: int, end: int) -> bool:
    char = text[end - 1]
    if not _is_mark(char):
        return False
    before = text[end - 2] if end - 2 >= start else ""
    if char == "." and _INITIALISM.fullmatch(text, start, end):
        return False
    if (char in _AFTER_NUMBER or unicodedata.category(char) == "Sc") and before.isdigit():
        return False
    return not (char in _APOSTROPHES and _plural_possessive(text, start, end))


def _plural_possessive(text: str, start: int, end: int) -> bool:
    """students' (kept) as against 'students' (a quotation: stripped on both sides); `text`
    is the whole token, so its first character tells whether a quotation opened it."""
    if end - start < 3 or text[end - 2] not in "sS" or not text[end - 3].isalpha():
        return False
    return text[0] not in _APOSTROPHES


def _is_mark(char: str) -> bool:
    """Punctuation, and the symbols that are never part of a word (music notes, carets)."""
    category = unicodedata.category(char)
    return category[0] == "P" or category in ("So", "Sk", "Sc")
