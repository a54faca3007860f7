"""Greedy CTC decoding into timed words and segments.

The best output of each frame, repeats merged and blanks dropped, grouped into words at the
word separator. A word's times come from its frames (frame index x frame stride); its
confidence is the geometric mean of its frames' probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.core.backend import Segment, Word
from services.ctc.text import TextRules
from services.ctc.vocabulary import Vocabulary

# A pause at least this long between words starts a new segment (result).
SEGMENT_PAUSE_S = 0.8


@dataclass(frozen=True)
class Token:
    """One output emitted over frames [first, last]."""

    id: int
    first: int
    last: int


@dataclass(frozen=True)
class TimedWord:
    """A word with the log-probability sum and count of its frames, so that segments can
    average over frames rather than over words."""

    word: Word
    log_prob: float
    frames: int


def best_path(log_probs: np.ndarray, blank: int) -> list[Token]:
    """The greedy path's tokens: runs of one output, blanks left out."""
    if not len(log_probs):
        return []
    ids = log_probs.argmax(axis=1)
    change = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(ids)])) - 1
    return [
        Token(int(ids[a]), int(a), int(b))
        for a, b in zip(starts, ends, strict=True)
        if ids[a] != blank
    ]


def words(
    tokens: list[Token],
    log_probs: np.ndarray,
    vocab: Vocabulary,
    rules: TextRules,
    frame_s: float,
    duration: float,
) -> list[TimedWord]:
    """The greedy path's words, tidied by `rules`; none ends after `duration`."""
    found: list[TimedWord] = []
    for group in _groups(tokens, vocab):
        text = rules.display("".join(vocab.tokens[t.id] for t in group))
        if not text:
            continue
        frame_lp = [log_probs[t.first : t.last + 1, t.id] for t in group]
        total, count = float(sum(f.sum() for f in frame_lp)), sum(len(f) for f in frame_lp)
        start = group[0].first * frame_s
        end = min((group[-1].last + 1) * frame_s, duration)
        found.append(TimedWord(Word(text, start, end, math.exp(total / count)), total, count))
    return found


def segments(timed: list[TimedWord], pause_s: float = SEGMENT_PAUSE_S) -> list[Segment]:
    """Words grouped into segments, a new one after each pause of `pause_s` or more."""
    groups: list[list[TimedWord]] = []
    for word in timed:
        if groups and word.word.start - groups[-1][-1].word.end < pause_s:
            groups[-1].append(word)
        else:
            groups.append([word])
    return [_segment(group) for group in groups]


def _segment(group: list[TimedWord]) -> Segment:
    total = sum(w.log_prob for w in group)
    count = sum(w.frames for w in group)
    words_ = tuple(w.word for w in group)
    return Segment(
        " ".join(w.text for w in words_),
        words_[0].start,
        words_[-1].end,
        math.exp(total / count),
        words_,
    )


def _groups(tokens: list[Token], vocab: Vocabulary) -> list[list[Token]]:
    """Tokens between word breaks; special tokens (written as nothing) are left out."""
    groups: list[list[Token]] = [[]]
    for token in tokens:
        if vocab.is_break(token.id):
            groups.append([])
        elif vocab.tokens[token.id]:
            groups[-1].append(token)
    return [g for g in groups if g]
