"""CTC scores of given label sequences: their log-likelihood, and their best alignment.

A label sequence's log-likelihood, log P(labels | audio), sums the probability of every path
of frames that spells it (CTC's forward algorithm, via torch's ctc_loss), so it does not
hinge on a single best path. The alignment is that single best path (Viterbi), used only to
time the words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NEG_INF = -np.inf


@dataclass(frozen=True)
class Scored:
    log_likelihood: float
    labels: tuple[int, ...]  # the spelling that scored best (see `edge_variants`)
    offset: int  # labels before the first word's first label (a leading separator)


def edge_variants(labels: list[int], delimiter: int | None) -> list[tuple[tuple[int, ...], int]]:
    """The spellings of one text: with and without a word separator at either edge.

    Many models write a separator in the silence around speech; each spelling is the same
    words, so their probabilities add up. Returns (labels, offset of the first word).
    """
    core = tuple(labels)
    if delimiter is None:
        return [(core, 0)]
    d = (delimiter,)
    variants = [(core, 0), (d + core, 1), (core + d, 0), (d + core + d, 1)]
    # Without words, "separator before" and "separator after" are one spelling: count it once.
    return list(dict.fromkeys(variants)) if core else [((), 0), (d, 0), (d + d, 0)]


def log_likelihoods(
    log_probs: np.ndarray, texts: list[list[int]], blank: int, delimiter: int | None
) -> list[Scored]:
    """Each text's log-likelihood over all its edge spellings, in one batched pass."""
    variants, owners = [], []
    for owner, labels in enumerate(texts):
        for variant in edge_variants(labels, delimiter):
            variants.append(variant)
            owners.append(owner)
    frames = torch.from_numpy(log_probs)
    batch = frames.unsqueeze(1).expand(-1, len(variants), -1)
    targets = torch.tensor([label for labels, _ in variants for label in labels], dtype=torch.long)
    nll = torch.nn.functional.ctc_loss(
        batch,
        targets,
        torch.full((len(variants),), len(frames), dtype=torch.long),
        torch.tensor([len(labels) for labels, _ in variants], dtype=torch.long),
        blank=blank,
        reduction="none",
        zero_infinity=False,
    )
    each = (-nll).double().numpy()
    scored = []
    for owner in range(len(texts)):
        mine = [i for i, o in enumerate(owners) if o == owner]
        best = max(mine, key=lambda i: each[i])
        total = float(np.logaddexp.reduce(each[mine]))
        scored.append(Scored(total, variants[best][0], variants[best][1]))
    return scored


def align(log_probs: np.ndarray, labels: tuple[int, ...], blank: int) -> list[tuple[int, int]]:
    """Best path's frames [first, last] for each label, or [] when the audio is too short."""
    states = _expand(labels, blank)
    emit = log_probs[:, states]
    can_skip = np.zeros(len(states), dtype=bool)
    can_skip[2:] = (states[2:] != blank) & (states[2:] != states[:-2])
    score = np.full(len(states), NEG_INF)
    score[: min(2, len(states))] = emit[0, : min(2, len(states))]
    back = np.zeros(emit.shape, dtype=np.int8)
    for t in range(1, len(emit)):
        step = np.concatenate(([NEG_INF], score[:-1]))
        skip = np.where(can_skip, np.concatenate(([NEG_INF, NEG_INF], score[:-2])), NEG_INF)
        choices = np.stack([score, step, skip])
        back[t] = choices.argmax(axis=0)
        score = choices[back[t], np.arange(len(states))] + emit[t]
    last = len(states) - 1
    end = last if last == 0 or score[last] >= score[last - 1] else last - 1
    if not np.isfinite(score[end]):
        return []
    path = np.empty(len(emit), dtype=np.int64)
    for t in range(len(emit) - 1, -1, -1):
        path[t] = end
        end -= int(back[t, end])
    spans = []
    for k in range(len(labels)):
        frames = np.flatnonzero(path == 2 * k + 1)
        spans.append((int(frames[0]), int(frames[-1])))
    return spans


def _expand(labels: tuple[int, ...], blank: int) -> np.ndarray:
    """blank, l1, blank, l2, ..., blank: CTC's states for a label sequence."""
    states = np.full(2 * len(labels) + 1, blank, dtype=np.int64)
    states[1::2] = labels
    return states
