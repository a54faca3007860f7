"""Keeps interim text steady: local agreement over successive decodes of a growing utterance.

A word is committed once two decodes in a row agree on it and on everything before it.
Committed words are fed back to the model as a forced prefix, so later interim results and
the final one start with them and never take them back.
"""

from __future__ import annotations


class LocalAgreement:
    def __init__(self):
        self.committed: list[str] = []
        self._previous: list[str] = []

    @property
    def prefix(self) -> str:
        return " ".join(self.committed)

    def update(self, text: str) -> float:
        """Takes the newest hypothesis; returns its stability (share of committed words)."""
        words = text.split()
        agreed = 0
        for mine, theirs in zip(self._previous, words, strict=False):
            if mine != theirs:
                break
            agreed += 1
        if agreed > len(self.committed):
            self.committed = words[:agreed]
        self._previous = words
        return len(self.committed) / len(words) if words else 0.0

    def reset(self) -> None:
        self.committed, self._previous = [], []
