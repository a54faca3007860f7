"""The two ways to get a transcript that the benchmarks compare, behind one small interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench import cpu
from bench.library import Library
from bench.service import Service


@dataclass(frozen=True)
class Side:
    name: str
    transcribe: Callable[[bytes], str]
    cpu_seconds: Callable[[], float]  # cumulative CPU this side has used, all processes


def library_side(library: Library) -> Side:
    return Side("library", library.transcribe, cpu.own_seconds)


def service_side(service: Service) -> Side:
    # The client's share (this process) counts too: a gRPC call costs both ends.
    return Side(
        "service",
        service.recognize,
        lambda: cpu.own_seconds() + cpu.process_seconds(service.pid),
    )
