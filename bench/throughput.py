"""Throughput with several clients at once: audio seconds recognised per wall-clock second.

The library side is one WhisperModel with one worker per client (its documented way to serve
threads); the service side has one inference slot per client. Each side runs waves of one
request per client, the sides alternating wave by wave, so a burst of other load on the
machine falls on both alike.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.clips import Clip
from bench.cpu import OtherLoad
from bench.progress import note
from bench.sides import Side

TARGET_RATIO = 0.95  # service rate / library rate, at least


@dataclass
class Totals:
    audio_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def audio_per_wall(self) -> float:
        return self.audio_s / self.wall_s

    @property
    def cpu_per_audio(self) -> float:
        return self.cpu_s / self.audio_s


@dataclass(frozen=True)
class ThroughputRow:
    clip: str
    audio_s: float
    requests: int  # per side
    library: Totals
    service: Totals
    other_cores: float  # CPU other processes used meanwhile, in cores

    @property
    def ratio(self) -> float:
        return self.service.audio_per_wall / self.library.audio_per_wall

    @property
    def cpu_ratio(self) -> float:
        return self.service.cpu_per_audio / self.library.cpu_per_audio

    @property
    def passed(self) -> bool:
        return self.ratio >= TARGET_RATIO


def measure_throughput(
    clips: list[Clip], library: Side, service: Side, requests: int, clients: int
) -> list[ThroughputRow]:
    # One untimed wave per side, so every worker has run once before the clock starts.
    for side in (library, service):
        _wave(side, clips[0], clients, Totals())
    waves = max(1, requests // clients)
    return [_measure_clip(clip, library, service, waves, clients) for clip in clips]


def _measure_clip(
    clip: Clip, library: Side, service: Side, waves: int, clients: int
) -> ThroughputRow:
    totals = {library.name: Totals(), service.name: Totals()}
    other_load = OtherLoad()
    for wave in range(waves):
        for side in (library, service) if wave % 2 == 0 else (service, library):
            _wave(side, clip, clients, totals[side.name])
    shown = ", ".join(f"{name} {t.audio_per_wall:.2f}" for name, t in totals.items())
    note(f"throughput {clip.name} (audio s / s): {shown}")
    return ThroughputRow(
        clip.name,
        clip.seconds,
        waves * clients,
        totals[library.name],
        totals[service.name],
        other_load.cores(),
    )


def _wave(side: Side, clip: Clip, clients: int, totals: Totals) -> None:
    """`clients` requests at once, one per client thread; adds what they took to `totals`."""
    with ThreadPoolExecutor(clients) as pool:
        cpu_before, started = side.cpu_seconds(), time.perf_counter()
        # list() waits for every request and re-raises the first failure.
        list(pool.map(lambda _: side.transcribe(clip.content), range(clients)))
        totals.wall_s += time.perf_counter() - started
        totals.cpu_s += side.cpu_seconds() - cpu_before
    totals.audio_s += clients * clip.seconds
