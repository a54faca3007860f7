"""A GPU memory bound for a model whose runtime has no cap of its own (CTranslate2).

The service measures, at warm-up, what its model replicas take and what a batch takes at its
peak, and sizes the batch and the number of batches at once so that the whole stays under
`gpu_memory_fraction` of the card. The arithmetic lives here, apart from the measuring, so that
it is tested without a GPU.

The model: each replica (one per batch that may run at once) holds its weights; each running
batch needs a workspace that grows with its size, measured at one item and at a full batch and
taken as linear between. Warm-up decodes are short, while a real window may decode up to the
model's token limit, whose caches grow with it, so batch workspaces are counted with
`HEADROOM`.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
HEADROOM = 1.25


class GpuMemoryTooSmall(RuntimeError):
    """Even one request does not fit in the share of the GPU the service may take."""


@dataclass(frozen=True)
class Footprint:
    """What was measured, in bytes of the card's used memory (all processes on it)."""

    total: int  # the card's memory
    before_load: int  # used before the model loaded
    after_load: int  # used once `replicas` replicas were loaded
    replicas: int
    peak_one: int  # used at the peak of a pass over one window
    peak_full: int  # used at the peak of a pass over `batch` windows
    batch: int

    @property
    def per_replica(self) -> float:
        return max(0, self.after_load - self.before_load) / self.replicas

    def workspace(self, size: int) -> float:
        """A running batch's workspace at `size` windows, headroom included."""
        one = max(0, self.peak_one - self.after_load)
        per_item = max(0, self.peak_full - self.peak_one) / max(1, self.batch - 1)
        return HEADROOM * (one + (size - 1) * per_item)

    def needs(self, size: int, runners: int) -> float:
        return runners * (self.per_replica + self.workspace(size))


@dataclass(frozen=True)
class Fit:
    max_batch_size: int
    runners: int
    needs: float  # bytes, at that size
    allowed: float  # bytes


def fit(footprint: Footprint, fraction: float, max_batch_size: int, runners: int) -> Fit:
    """The largest batch, then the most batches at once, within `max_batch_size` and `runners`
    that need at most `fraction` of the card; raises `GpuMemoryTooSmall` when even one window
    on one replica does not fit."""
    allowed = fraction * footprint.total
    for size in range(max_batch_size, 0, -1):
        for count in range(runners, 0, -1):
            needs = footprint.needs(size, count)
            if needs <= allowed:
                return Fit(size, count, needs, allowed)
    needs = footprint.needs(1, 1)
    raise GpuMemoryTooSmall(
        f"one request needs {needs / MIB:.0f} MiB of GPU memory (the model "
        f"{footprint.per_replica / MIB:.0f} MiB and a one-window pass "
        f"{footprint.workspace(1) / MIB:.0f} MiB) but gpu_memory_fraction {fraction} of this "
        f"{footprint.total / MIB:.0f} MiB card allows {allowed / MIB:.0f} MiB: raise "
        "gpu_memory_fraction, free the card or choose a smaller model"
    )
