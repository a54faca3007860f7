"""whisper_en's GPU memory bound: the sizing arithmetic with measured numbers injected, the
service refusing to turn ready when one request cannot fit, and (on a CUDA machine only) the
real measurement against the card."""

import ctranslate2
import pytest

from services.core.batching import BatchLimits
from services.core.gpu_budget import HEADROOM, MIB, Footprint, GpuMemoryTooSmall, fit
from services.whisper_en import gpu_memory
from services.whisper_en.backend import WhisperBackend
from tests.conftest import whisper_settings
from tests.support import http_get, running

GIB = 1024 * MIB


def footprint(**changes) -> Footprint:
    """A 16 GiB card, 1 GiB used by others, two replicas of 500 MiB each, a one-window pass
    of 300 MiB and 100 MiB more for each further window (measured at 8)."""
    values = dict(
        total=16 * GIB,
        before_load=1 * GIB,
        after_load=1 * GIB + 1000 * MIB,
        replicas=2,
        peak_one=1 * GIB + 1300 * MIB,
        peak_full=1 * GIB + 2000 * MIB,
        batch=8,
    )
    return Footprint(**{**values, **changes})


def test_the_footprint_splits_into_replicas_and_a_workspace_linear_in_the_batch():
    measured = footprint()
    assert measured.per_replica == 500 * MIB
    assert measured.workspace(1) == pytest.approx(HEADROOM * 300 * MIB)
    assert measured.workspace(8) == pytest.approx(HEADROOM * 1000 * MIB)
    assert measured.needs(8, 2) == pytest.approx(2 * (500 + HEADROOM * 1000) * MIB)


def test_a_roomy_card_keeps_the_settings():
    found = fit(footprint(), 0.9, max_batch_size=8, runners=2)
    assert (found.max_batch_size, found.runners) == (8, 2)
    assert found.needs <= found.allowed == 0.9 * 16 * GIB


def test_a_tight_share_keeps_the_batch_and_runs_fewer_at_once_then_lowers_the_batch():
    measured = footprint()
    # 3 GiB: two replicas with batches of 8 need 2 * (500 + 1250) MiB = 3.4 GiB; one fits.
    found = fit(measured, 3 * GIB / measured.total, max_batch_size=8, runners=2)
    assert (found.max_batch_size, found.runners) == (8, 1)
    # 1.2 GiB: one replica and batches of 3 windows (500 + 1.25 * 500 MiB), no more.
    found = fit(measured, 1.2 * GIB / measured.total, max_batch_size=8, runners=2)
    assert (found.max_batch_size, found.runners) == (3, 1)
    assert measured.needs(4, 1) > found.allowed >= found.needs


def test_when_one_request_cannot_fit_the_message_says_what_it_needs():
    with pytest.raises(GpuMemoryTooSmall) as refused:
        fit(footprint(), 0.04, max_batch_size=8, runners=2)  # 655 MiB of 16 GiB
    message = str(refused.value)
    assert "one request needs 875 MiB" in message and "allows 655 MiB" in message
    assert "gpu_memory_fraction 0.04" in message


class FakeCard:
    """Readings a card would give: used memory now, and the peaks of the passes asked."""

    def __init__(self, total: int, used: int, peaks: list[int]):
        self._total, self._used, self._peaks = total, used, list(peaks)
        self.passes: list[int] = []

    def used(self) -> int:
        return self._used

    def total(self) -> int:
        return self._total

    def peak_during(self, work) -> int:
        work()
        return self._peaks.pop(0)


def test_sizing_measures_a_one_window_pass_and_a_full_batch():
    card = FakeCard(16 * GIB, 2 * GIB, peaks=[2 * GIB + 300 * MIB, 2 * GIB + 1000 * MIB])
    passes = []
    found = gpu_memory.size_batches(
        card, 1 * GIB, 2 * GIB, 2, passes.append, fraction=0.9, max_batch_size=8
    )
    assert passes == [1, 8]
    assert (found.max_batch_size, found.runners) == (8, 2)


class Readings(FakeCard):
    """Only the readings: the passes themselves are not run (on a CPU they would take long)."""

    def peak_during(self, work) -> int:
        return self._peaks.pop(0)


class TooSmallCard(WhisperBackend):
    """whisper_en on this CPU, with the readings of a card far too small for it."""

    def load(self):
        super().load()
        self._card = Readings(1 * GIB, 100 * MIB, peaks=[900 * MIB, 1000 * MIB])
        self._before_load = 0


def test_a_service_that_cannot_fit_one_request_does_not_turn_ready(whisper_model, caplog):
    settings = whisper_settings(whisper_model, gpu_memory_fraction=0.5)
    with running("whisper_en", settings, TooSmallCard(settings)) as server:
        assert not server.wait_loaded()
        assert http_get(server, "/readyz")[0] == 503
    failures = [r for r in caplog.records if r.exc_info and r.exc_info[0] is GpuMemoryTooSmall]
    assert failures, "the start-up failure was not logged"
    assert "allows 512 MiB" in str(failures[0].exc_info[1])


@pytest.mark.gpu
@pytest.mark.skipif(ctranslate2.get_cuda_device_count() == 0, reason="needs a CUDA GPU")
def test_on_a_gpu_the_bound_is_measured_and_kept(whisper_model):
    settings = whisper_settings(whisper_model, device="cuda", gpu_memory_fraction=0.9)
    backend = WhisperBackend(settings)
    from services.core.batching import Batcher

    batcher = Batcher(BatchLimits(8, 0.02, 1))
    backend.attach(batcher)
    backend.load()
    backend.warm_up()
    card = gpu_memory.CardMemory()
    assert batcher.limits.max_batch_size >= 1
    assert card.used() - backend._before_load <= 0.9 * card.total()
