"""Kubernetes resource quantities as podman takes them."""

from __future__ import annotations

import re

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_bytes(quantity: str | int) -> int:
    """`8Gi`, `512Mi`, `1G`, `1000` as bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i|[kMGT]?)", str(quantity))
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    number, unit = match.groups()
    scale = _BINARY.get(unit) or _DECIMAL[unit]
    return int(float(number) * scale)


def millicpu(quantity: str | int | float) -> int:
    text = str(quantity)
    if text.endswith("m"):
        return int(text[:-1])
    return round(float(text) * 1000)


def cpus(quantity: str | int | float) -> float:
    return millicpu(quantity) / 1000


def cpu_shares(quantity: str | int | float) -> int:
    """The kubelet's cpu.shares for a CPU request: 1024 a core, at least 2."""
    return max(2, millicpu(quantity) * 1024 // 1000)
