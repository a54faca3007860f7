"""Speaker turns from labelled windows: each speech region is cut into frames, each frame
takes the speaker most of the windows over it were given, and runs of one speaker become
turns; a turn shorter than `min_turn_s` that touches another is given to its longer
neighbour, since a speaker change that brief is more often a noisy window than a reply."""

from __future__ import annotations

import numpy as np

from services.core.vad import Span
from services.diarization.backend import SAMPLE_RATE, Turn
from services.diarization.windows import Windows


def to_turns(
    windows: Windows, labels: np.ndarray, spans: list[Span], frame_s: float, min_turn_s: float
) -> tuple[Turn, ...]:
    """Non-overlapping turns in time order, speakers numbered from 1 by first appearance."""
    if len(windows) == 0:
        return ()
    frame = max(1, round(frame_s * SAMPLE_RATE))
    pieces: list[list[int]] = []  # [start, end, label] in samples
    for span in spans:
        pieces.extend(_span_pieces(windows, labels, span, frame))
    pieces = _absorb_short(pieces, round(min_turn_s * SAMPLE_RATE))
    return _numbered(pieces)


def _span_pieces(windows: Windows, labels: np.ndarray, span: Span, frame: int) -> list[list[int]]:
    inside = (windows.starts >= span.start) & (windows.starts < span.end)
    if not inside.any():
        return []
    edges = np.arange(span.start, span.end, frame)
    centres = np.minimum(edges + frame / 2, span.end)
    votes = np.zeros((len(edges), int(labels.max()) + 1))
    for start, end, label in zip(
        windows.starts[inside], windows.ends[inside], labels[inside], strict=True
    ):
        votes[(centres >= start) & (centres <= end), label] += 1
    voted = votes.sum(axis=1) > 0
    # Frames past the last window (a tail too short for one) take the nearest voted frame.
    nearest = np.flatnonzero(voted)[
        np.abs(np.arange(len(edges))[:, None] - np.flatnonzero(voted)[None, :]).argmin(axis=1)
    ]
    frame_labels = votes[nearest].argmax(axis=1)
    pieces: list[list[int]] = []
    for index, label in enumerate(frame_labels):
        start = int(edges[index])
        end = min(start + frame, span.end)
        if pieces and pieces[-1][2] == label:
            pieces[-1][1] = end
        else:
            pieces.append([start, end, int(label)])
    return pieces


def _absorb_short(pieces: list[list[int]], min_samples: int) -> list[list[int]]:
    """Gives each too-short piece that touches a neighbour to the longer such neighbour,
    shortest first, until none is left; then joins touching pieces of one speaker."""
    while True:
        candidates = [
            i for i, p in enumerate(pieces) if p[1] - p[0] < min_samples and _neighbours(pieces, i)
        ]
        if not candidates:
            return pieces
        shortest = min(candidates, key=lambda i: pieces[i][1] - pieces[i][0])
        host = max(_neighbours(pieces, shortest), key=lambda j: pieces[j][1] - pieces[j][0])
        pieces[shortest][2] = pieces[host][2]
        pieces = _joined(pieces)


def _neighbours(pieces: list[list[int]], index: int) -> list[int]:
    """Pieces that touch piece `index` (no pause between) and belong to another speaker."""
    found = []
    if index > 0 and pieces[index - 1][1] == pieces[index][0]:
        found.append(index - 1)
    if index + 1 < len(pieces) and pieces[index + 1][0] == pieces[index][1]:
        found.append(index + 1)
    return [j for j in found if pieces[j][2] != pieces[index][2]]


def _joined(pieces: list[list[int]]) -> list[list[int]]:
    joined: list[list[int]] = []
    for piece in pieces:
        if joined and joined[-1][2] == piece[2] and joined[-1][1] == piece[0]:
            joined[-1][1] = piece[1]
        else:
            joined.append(list(piece))
    return joined


def _numbered(pieces: list[list[int]]) -> tuple[Turn, ...]:
    numbers: dict[int, int] = {}
    turns = []
    for start, end, label in _joined(pieces):
        number = numbers.setdefault(label, len(numbers) + 1)
        turns.append(Turn(start / SAMPLE_RATE, end / SAMPLE_RATE, number))
    return tuple(turns)
