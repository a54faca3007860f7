"""The backpressure gate: bounded slots, a bounded queue, fast refusal, fair hand-over."""

import asyncio
import time

import pytest

from services.core.errors import Overloaded
from services.core.gate import Gate


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 10))


def test_refuses_at_once_when_slots_and_queue_are_full():
    async def scenario():
        gate = Gate(max_concurrency=1, max_queue=1, queue_timeout_s=5)
        await gate.acquire()
        waiter = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        assert gate.queued == 1
        started = time.perf_counter()
        with pytest.raises(Overloaded) as refused:
            await gate.acquire()
        assert time.perf_counter() - started < 0.05
        assert refused.value.retry_after_s > 0
        gate.release(0.1)
        await waiter  # the queued request got the slot
        assert gate.in_flight == 1 and gate.queued == 0
        gate.release(0.1)
        assert gate.in_flight == 0

    run(scenario())


def test_queue_wait_is_bounded_by_the_timeout():
    async def scenario():
        gate = Gate(max_concurrency=1, max_queue=4, queue_timeout_s=0.1)
        await gate.acquire()
        with pytest.raises(Overloaded, match=r"within 0\.1 s"):
            await gate.acquire()
        assert gate.queued == 0
        with pytest.raises(Overloaded, match=r"within 0\.0"):
            await gate.acquire(timeout_s=0.02)  # the caller's own deadline is shorter

    run(scenario())


def test_a_cancelled_waiter_leaves_the_queue_and_loses_no_slot():
    async def scenario():
        gate = Gate(max_concurrency=1, max_queue=2, queue_timeout_s=5)
        await gate.acquire()
        waiter = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert gate.queued == 0
        gate.release(0.1)
        assert gate.in_flight == 0
        await gate.acquire()  # the slot is free again
        assert gate.in_flight == 1

    run(scenario())


def test_retry_hint_grows_with_the_work_ahead():
    async def scenario():
        gate = Gate(max_concurrency=2, max_queue=0, queue_timeout_s=5)
        await gate.acquire()
        first = gate.retry_after_s()
        await gate.acquire()
        assert gate.retry_after_s() > first

    run(scenario())
