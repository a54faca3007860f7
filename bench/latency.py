"""Single-request latency, library against service, on the same bytes.

Runs alternate (library then service, then service then library, ...), so slow moments of the
machine and any order effect fall on both sides alike; medians damp the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.clips import Clip
from bench.cpu import OtherLoad
from bench.progress import note
from bench.sides import Side
from bench.stats import median
from tests.support import wer

TARGET_RATIO = 1.03  # service median / library median, at most


@dataclass(frozen=True)
class LatencyRow:
    clip: str
    audio_s: float
    reps: int
    library_s: float  # median wall time
    service_s: float
    library_cpu_s: float  # median CPU time
    service_cpu_s: float
    text_wer: float  # between the two transcripts: near 0 shows both did the same work
    other_cores: float  # CPU other processes used meanwhile, in cores

    @property
    def ratio(self) -> float:
        return self.service_s / self.library_s

    @property
    def cpu_ratio(self) -> float:
        return self.service_cpu_s / self.library_cpu_s

    @property
    def passed(self) -> bool:
        return self.ratio <= TARGET_RATIO


@dataclass
class _Runs:
    wall: list[float]
    cpu: list[float]
    text: str = ""


def measure_latency(
    clips: list[Clip], library: Side, service: Side, reps_for: Callable[[Clip], int]
) -> list[LatencyRow]:
    # One untimed call each, so neither side pays for first-use costs in the figures.
    library.transcribe(clips[0].content)
    service.transcribe(clips[0].content)
    return [_measure_clip(clip, library, service, reps_for(clip)) for clip in clips]


def _measure_clip(clip: Clip, library: Side, service: Side, reps: int) -> LatencyRow:
    runs = {side.name: _Runs([], []) for side in (library, service)}
    other_load = OtherLoad()
    for rep in range(reps):
        order = (library, service) if rep % 2 == 0 else (service, library)
        for side in order:
            _time_one(side, clip.content, runs[side.name])
        times = ", ".join(f"{name} {r.wall[-1]:.3f} s" for name, r in runs.items())
        note(f"latency {clip.name} rep {rep + 1}/{reps}: {times}")
    lib, svc = runs[library.name], runs[service.name]
    return LatencyRow(
        clip.name,
        clip.seconds,
        reps,
        median(lib.wall),
        median(svc.wall),
        median(lib.cpu),
        median(svc.cpu),
        wer(lib.text, svc.text),
        other_load.cores(),
    )


def _time_one(side: Side, content: bytes, runs: _Runs) -> None:
    cpu_before, started = side.cpu_seconds(), time.perf_counter()
    runs.text = side.transcribe(content)
    runs.wall.append(time.perf_counter() - started)
    runs.cpu.append(side.cpu_seconds() - cpu_before)
