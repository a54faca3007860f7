"""Answers that skip inference: a cache hit, and a refusal when the service is full.

Both should cost only the gRPC round trip and a little bookkeeping, whatever the model does.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from bench.cpu import OtherLoad
from bench.service import CALL_TIMEOUT_S, Service, english
from bench.stats import percentile

CACHE_P50_TARGET_MS = 5.0
REJECT_P99_TARGET_MS = 10.0
SHORT_TIMEOUT_S = 5.0
BUSY_WAIT_S = 60.0
IDLE_WAIT_S = 180.0


@dataclass(frozen=True)
class FastAnswers:
    """Times of the answers of interest."""

    times_s: list[float]
    other_cores: float  # CPU other processes used meanwhile, in cores
    others: dict[str, int] = field(default_factory=dict)  # other answers: status -> count

    @property
    def p50_ms(self) -> float:
        return 1000 * percentile(self.times_s, 50)

    @property
    def p99_ms(self) -> float:
        return 1000 * percentile(self.times_s, 99)


def measure_cache_hits(
    service: Service, content: bytes, calls: int, budget_s: float
) -> FastAnswers:
    """The same request again and again after one call that fills the cache.

    The request is built once: building one around a megabyte of audio costs the client a few
    milliseconds, which would hide what the service itself takes.
    """
    request = english(content)
    service.stub.Recognize(request, timeout=CALL_TIMEOUT_S)
    times: list[float] = []
    other_load = OtherLoad()
    deadline = time.monotonic() + budget_s
    while len(times) < calls and time.monotonic() < deadline:
        started = time.perf_counter()
        service.stub.Recognize(request, timeout=SHORT_TIMEOUT_S)
        times.append(time.perf_counter() - started)
    return FastAnswers(times, other_load.cores())


def measure_rejections(
    service: Service, busy_content: bytes, content: bytes, calls: int, budget_s: float
) -> FastAnswers:
    """Requests sent while the only slot is taken by a long one and the queue holds none."""
    busy = service.stub.Recognize.future(english(busy_content), timeout=IDLE_WAIT_S)
    try:
        if not _wait_for(lambda: service.in_flight() >= 1, BUSY_WAIT_S):
            raise RuntimeError("the long request never took the inference slot")
        return _refused(service, content, calls, budget_s, busy.done)
    finally:
        busy.cancel()
        # The worker stops at its next cancellation check; wait so nothing runs on after.
        _wait_for(lambda: service.in_flight() == 0, IDLE_WAIT_S)


def _refused(
    service: Service, content: bytes, calls: int, budget_s: float, busy_over: Callable
) -> FastAnswers:
    times: list[float] = []
    others: collections.Counter[str] = collections.Counter()
    request, other_load = english(content), OtherLoad()
    deadline = time.monotonic() + budget_s
    while len(times) + others.total() < calls and time.monotonic() < deadline:
        if busy_over():
            break  # the slot is free again: later requests would not be refused
        started = time.perf_counter()
        try:
            service.stub.Recognize(request, timeout=SHORT_TIMEOUT_S)
            others["OK"] += 1
        except grpc.RpcError as error:
            elapsed = time.perf_counter() - started
            if error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                times.append(elapsed)
            else:
                others[error.code().name] += 1
    return FastAnswers(times, other_load.cores(), dict(others))


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
