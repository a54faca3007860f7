"""Masks profane words as Google's and Riva's `profanity_filter` do: the first letter kept,
each later letter an asterisk (`f***`), the punctuation around the word kept (`S***!`).

The word lists are glin-profanity's (MIT, 24 languages). A language is filtered with its own
list and with English's, since speech in any language borrows English swearing and Whisper
writes it as English; a language without a list of its own gets English's alone. A word is
judged bare (see `services.core.words`), and judged alike in a transcript and in a word
list, so the masked transcript and the masked words always agree.
"""

from __future__ import annotations

import functools
import re

from glin_profanity import Filter

from services.core.languages import primary_subtag
from services.core.words import bare_word

MASK = "*"
# BCP-47 primary subtags of glin-profanity's lists (its names for them).
LISTS = {
    "ar": "arabic",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "en": "english",
    "eo": "esperanto",
    "es": "spanish",
    "fa": "persian",
    "fi": "finnish",
    "fr": "french",
    "hi": "hindi",
    "hu": "hungarian",
    "it": "italian",
    "ja": "japanese",
    "ko": "korean",
    "nb": "norwegian",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ru": "russian",
    "sv": "swedish",
    "th": "thai",
    "tr": "turkish",
    "zh": "chinese",
}
_TOKEN = re.compile(r"\S+")


class ProfanityFilter:
    """The filter of some of glin-profanity's lists (by its names for them)."""

    def __init__(self, lists: tuple[str, ...]):
        self.lists = lists
        # The dictionary as it is: no leetspeak or fuzzy matching, which would mask words a
        # recogniser writes correctly (its output is never obfuscated).
        self._filter = Filter({"languages": list(lists), "detect_leetspeak": False})

    def is_profane(self, word: str) -> bool:
        bare = bare_word(word)
        return bool(bare) and self._filter.is_profane(bare)

    def mask_word(self, word: str) -> str:
        """`word` masked when profane (punctuation around it kept), else unchanged."""
        bare = bare_word(word)
        if not bare or not self._filter.is_profane(bare):
            return word
        at = word.find(bare)
        return word[:at] + _masked(bare) + word[at + len(bare) :]

    def mask_text(self, text: str) -> str:
        """`text` with each profane word masked; spacing and punctuation kept as they are."""
        return _TOKEN.sub(lambda token: self.mask_word(token.group()), text)


def for_language(language_code: str) -> ProfanityFilter:
    """The filter for a BCP-47 code ("" for none: English's list alone)."""
    own = LISTS.get(primary_subtag(language_code), "english") if language_code.strip() else ""
    return _filter_of(tuple(sorted({"english", own} - {""})))


@functools.cache
def _filter_of(lists: tuple[str, ...]) -> ProfanityFilter:
    # Keyed by lists, not by the client's code, so the cache stays as small as LISTS.
    return ProfanityFilter(lists)


def _masked(word: str) -> str:
    """The first letter kept (its case too), every later letter or digit an asterisk; inner
    apostrophes and hyphens stay, so `f***in'` keeps its shape."""
    return word[0] + "".join(MASK if char.isalnum() else char for char in word[1:])
