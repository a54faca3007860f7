"""CPU time: what a request costs whatever else the machine is doing, and how much CPU other
processes took meanwhile (they stretch wall times; a figure taken while they ran is suspect)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds used so far by every thread of this process."""
    return time.process_time()


def process_seconds(pid: int) -> float:
    """CPU seconds used so far by another process (Linux /proc, 1/CLK_TCK resolution)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


class OtherLoad:
    """Counts, from creation to `cores()`, the CPU used by processes other than this one and
    its children (other users, other jobs), as a mean number of busy cores."""

    def __init__(self):
        self._machine, self._ours, self._started = _machine_seconds(), _our_seconds(), _now()

    def cores(self) -> float:
        elapsed = _now() - self._started
        others = (_machine_seconds() - self._machine) - (_our_seconds() - self._ours)
        return max(0.0, others) / elapsed if elapsed > 0 else 0.0


def _now() -> float:
    return time.monotonic()


def _machine_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot: every state but idle and iowait."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / _TICKS


def _our_seconds() -> float:
    """This process, its finished children and its running ones (the service under test)."""
    times = os.times()
    total = times.user + times.system + times.children_user + times.children_system
    for pid in _running_children():
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += process_seconds(pid)
    return total


def _running_children() -> list[int]:
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(_stat_fields(int(entry.name))[1]) == me:
                    found.append(int(entry.name))
    return found


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after "(comm)": index 0 is field 3 (state), 1 the parent id, 11 utime."""
    return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
