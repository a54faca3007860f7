"""whisper_en's GPU memory bound: reads the card's used memory (NVML) around loading and around
warm-up passes of one window and of a full batch, and sizes the batcher to stay within
`gpu_memory_fraction` (services/core/gpu_budget.py has the arithmetic).

CTranslate2 reports no memory use of its own, so the card's used memory is read: on a card
the pod has to itself (as the chart schedules it) that is the service's own use. CTranslate2
keeps freed blocks cached, and the reading is sampled while a pass runs, so a peak is seen
even when it is released before the pass returns.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from services.core.gpu_budget import Fit, Footprint, fit

log = logging.getLogger("stt.whisper_en")
SAMPLE_S = 0.002


class CardMemory:
    """Used and total memory of one CUDA device, by NVML."""

    def __init__(self, device_index: int = 0):
        import pynvml  # only on a GPU: the CPU images need not have it

        self._nvml = pynvml
        pynvml.nvmlInit()
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)

    def used(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)

    def total(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).total)

    def peak_during(self, work: Callable[[], object]) -> int:
        """The most memory used while `work` ran (sampled), or after it if that is more."""
        with self._sampling() as peak:
            work()
        return max(peak[0], self.used())

    @contextlib.contextmanager
    def _sampling(self) -> Iterator[list[int]]:
        peak, done = [self.used()], threading.Event()

        def sample():
            while not done.wait(SAMPLE_S):
                peak[0] = max(peak[0], self.used())

        sampler = threading.Thread(target=sample, name="gpu-memory", daemon=True)
        sampler.start()
        try:
            yield peak
        finally:
            done.set()
            sampler.join()


def size_batches(
    memory: CardMemory,
    before_load: int,
    after_load: int,
    replicas: int,
    run_batch: Callable[[int], object],
    fraction: float,
    max_batch_size: int,
) -> Fit:
    """Measures a pass over one window and one over `max_batch_size`, then fits the limits;
    `run_batch(n)` runs one pass over n windows. Raises GpuMemoryTooSmall."""
    peak_one = memory.peak_during(lambda: run_batch(1))
    peak_full = memory.peak_during(lambda: run_batch(max_batch_size)) if max_batch_size > 1 else 0
    footprint = Footprint(
        memory.total(),
        before_load,
        after_load,
        replicas,
        peak_one,
        max(peak_full, peak_one),
        max_batch_size,
    )
    found = fit(footprint, fraction, max_batch_size, replicas)
    log.info(
        "sized to the GPU memory bound",
        extra={
            "max_batch_size": found.max_batch_size,
            "runners": found.runners,
            "needs_mib": round(found.needs / 2**20),
            "allowed_mib": round(found.allowed / 2**20),
        },
    )
    return found
