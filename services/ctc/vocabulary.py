"""The model's alphabet: what each CTC output means, and how to spell a phrase in it."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cached_property

from services.core.errors import InvalidConfig
from services.ctc.text import TextRules


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]  # text of each output id; "" for blank and other special tokens
    blank: int
    delimiter: int | None  # the word separator ("|"), when the model has one

    @classmethod
    def from_tokenizer(cls, tokenizer, size: int) -> Vocabulary:
        """From a CTC tokenizer, for a model with `size` outputs (may exceed the tokenizer)."""
        delimiter_token = getattr(tokenizer, "word_delimiter_token", None)
        delimiter = tokenizer.convert_tokens_to_ids(delimiter_token) if delimiter_token else None
        if delimiter is not None and not 0 <= delimiter < size:
            delimiter = None  # declared but not one of the model's outputs
        # Some tokenizers list the delimiter among their special tokens: it is a word break.
        specials = set(tokenizer.all_special_ids) - {delimiter}
        known = len(tokenizer)
        tokens = tuple(
            "" if i >= known or i in specials else tokenizer.convert_ids_to_tokens(i)
            for i in range(size)
        )
        blank = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return cls(tokens, blank, delimiter)

    def is_break(self, token: int) -> bool:
        """True for the word separator, and for a literal space where a model writes one."""
        return token == self.delimiter or (self.tokens[token].isspace() and token != self.blank)

    @cached_property
    def ids(self) -> dict[str, int]:
        """Output id of each written token."""
        return {text: i for i, text in enumerate(self.tokens) if text and i != self.delimiter}

    def spell(self, phrase: str, rules: TextRules) -> list[tuple[str, list[int]]]:
        """`phrase` as words, each with its output ids.

        Each character is taken as the model writes it: as it is, folded, or in upper case.
        Punctuation, and marks the model does not write (diacritics), are left out, since the
        model never outputs them; any other character it cannot write is refused.
        """
        words: list[tuple[str, list[int]]] = []
        unknown: set[str] = set()
        # NFKC: ligatures and presentation forms become the letters a model writes.
        for word in unicodedata.normalize("NFKC", phrase).split():
            ids = [t for t in (self._token(char, rules, unknown) for char in word) if t is not None]
            if ids:
                words.append((rules.display(word), ids))
        if unknown:
            shown = "".join(sorted(unknown))
            raise InvalidConfig(f"phrase {phrase!r} has characters the model cannot write: {shown}")
        if not words:
            raise InvalidConfig(f"phrase {phrase!r} has no letters the model can write")
        return words

    def join(self, words: list[list[int]]) -> list[int]:
        """Words' ids as one label sequence, the delimiter between words."""
        joined: list[int] = []
        for word in words:
            if joined and self.delimiter is not None:
                joined.append(self.delimiter)
            joined.extend(word)
        return joined

    def _token(self, char: str, rules: TextRules, unknown: set[str]) -> int | None:
        for form in (char, rules.fold(char), char.upper()):
            if form in self.ids:
                return self.ids[form]
        if rules.display(char) and not unicodedata.category(char).startswith("P"):
            unknown.add(char)
        return None
