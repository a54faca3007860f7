"""Candidate scoring: which of the expected phrases did the speaker say, and how surely.

Each phrase is scored by its CTC log-likelihood over the whole utterance. A phrase's
confidence is the softmax of the scores (each divided by the temperature) over the phrases
plus what the model hears on its own when that is none of them: of these readings of the
audio, the probability the model gives this one. So a clear match scores near 1, two
look-alike phrases share the mass, and speech that matches no phrase leaves every phrase low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.core.backend import Alternative, Segment, Word
from services.ctc import alignment
from services.ctc.decoding import Token
from services.ctc.text import TextRules
from services.ctc.vocabulary import Vocabulary


@dataclass(frozen=True)
class Frames:
    """What scoring needs to know of one utterance's model output."""

    log_probs: np.ndarray
    heard: list[Token]  # the greedy path
    heard_text: str  # its words, as returned to clients
    frame_s: float
    duration: float


def rank(
    frames: Frames,
    phrases: tuple[str, ...],
    vocab: Vocabulary,
    rules: TextRules,
    temperature: float,
) -> Segment:
    """The phrases as one segment: the best as its text, the others as ranked alternatives."""
    spelled = [vocab.spell(phrase, rules) for phrase in phrases]
    texts = [vocab.join([ids for _, ids in words]) for words in spelled]
    if rules.fold(frames.heard_text) not in {rules.fold(p) for p in phrases}:
        texts.append(_heard_labels(frames.heard, vocab))  # the model's own reading competes
    scored = alignment.log_likelihoods(frames.log_probs, texts, vocab.blank, vocab.delimiter)
    confidence = _softmax([s.log_likelihood / temperature for s in scored])
    order = sorted(range(len(phrases)), key=lambda i: (-scored[i].log_likelihood, i))
    readings = [
        Alternative(phrases[i], confidence[i], _words(frames, spelled[i], scored[i], vocab))
        for i in order
    ]
    best = readings[0]
    start = best.words[0].start if best.words else 0.0
    end = best.words[-1].end if best.words else frames.duration
    return Segment(best.text, start, end, best.confidence, best.words, tuple(readings[1:]))


def _words(
    frames: Frames,
    spelled: list[tuple[str, list[int]]],
    scored: alignment.Scored,
    vocab: Vocabulary,
) -> tuple[Word, ...]:
    """The phrase's words, timed by the best alignment of its best spelling."""
    spans = alignment.align(frames.log_probs, scored.labels, vocab.blank)
    if not spans:
        return ()
    found, position = [], scored.offset
    for text, ids in spelled:
        mine = range(position, position + len(ids))
        log_prob = [frames.log_probs[f, scored.labels[k]] for k in mine for f in _frames(spans[k])]
        start = spans[mine[0]][0] * frames.frame_s
        end = min((spans[mine[-1]][1] + 1) * frames.frame_s, frames.duration)
        found.append(Word(text, start, end, math.exp(float(np.mean(log_prob)))))
        position += len(ids) + (vocab.delimiter is not None)
    return tuple(found)


def _heard_labels(heard: list[Token], vocab: Vocabulary) -> list[int]:
    """The greedy path's labels, without separators at the edges (`edge_variants` adds them)."""
    labels = [t.id for t in heard]
    while labels and labels[0] == vocab.delimiter:
        labels.pop(0)
    while labels and labels[-1] == vocab.delimiter:
        labels.pop()
    return labels


def _frames(span: tuple[int, int]) -> range:
    return range(span[0], span[1] + 1)


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    if not math.isfinite(top):
        return [0.0] * len(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]
