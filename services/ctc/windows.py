"""Long audio as overlapping windows whose outputs are merged into one sequence of frames.

Each window hears `stride` of context on each side that it does not keep. The kept middles
tile the frames of the whole input exactly once, so decoding the merged frames sees every
frame once: a word at a join is neither doubled nor dropped. Windows start on frame
boundaries, so a window's frame j is frame start/units_per_frame + j of the whole input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.core.backend import SAMPLE_RATE


@dataclass(frozen=True)
class FrameGeometry:
    """How the model's input units (waveform samples, or feature frames) map to its outputs."""

    samples_per_unit: int
    units_per_frame: int

    @property
    def frame_seconds(self) -> float:
        return self.samples_per_unit * self.units_per_frame / SAMPLE_RATE

    def units(self, seconds: float) -> int:
        """Input units in `seconds`, rounded down to whole output frames (at least one)."""
        frames = max(1, int(seconds / self.frame_seconds))
        return frames * self.units_per_frame


@dataclass(frozen=True)
class Window:
    """Input units [start, end); keeps output frames [keep_from, keep_to) of the whole input
    (keep_to None: to the window's last frame)."""

    start: int
    end: int
    keep_from: int
    keep_to: int | None

    def kept(self, frames: np.ndarray, units_per_frame: int) -> np.ndarray:
        """The part of this window's output `frames` that goes into the merged sequence."""
        first = self.start // units_per_frame
        stop = None if self.keep_to is None else self.keep_to - first
        return frames[self.keep_from - first : stop]


def plan(total: int, window: int, stride: int, units_per_frame: int) -> list[Window]:
    """Windows of `window` units, `stride` units of unkept context on each inner side.

    `window` and `stride` are whole numbers of frames; input that fits one window is one
    window that keeps everything.
    """
    if total <= window:
        return [Window(0, total, 0, None)]
    step = max(units_per_frame, window - 2 * stride)
    starts = [0]
    while starts[-1] + window < total:
        starts.append(starts[-1] + step)
    stride_frames = stride // units_per_frame
    windows = []
    for i, start in enumerate(starts):
        keep_from = 0 if i == 0 else start // units_per_frame + stride_frames
        last = i == len(starts) - 1
        keep_to = None if last else starts[i + 1] // units_per_frame + stride_frames
        windows.append(Window(start, min(start + window, total), keep_from, keep_to))
    return windows
