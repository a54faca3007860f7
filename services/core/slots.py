"""Inference slots: worker threads behind the backpressure gate.

A request runs its model work here, off the event loop, only while it holds a gate slot, and
the slot is given back when the worker thread has really stopped, not when the client gave up.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from typing import TypeVar

from services.core.calls import Call
from services.core.cancellation import Cancellation
from services.core.gate import Gate
from services.core.metrics import ServiceMetrics
from services.core.priority import model_threads

T = TypeVar("T")


class InferenceSlots:
    def __init__(self, gate: Gate, metrics: ServiceMetrics, service: str, nice: int = 0):
        self._gate = gate
        self._metrics = metrics
        self._service = service
        self._executor = model_threads(gate.max_concurrency, "inference", nice)

    async def run(self, call: Call, work: Callable[..., T], *args) -> T:
        """Runs `work(*args, cancellation)` on a worker thread while holding a slot; waits in
        the gate's queue within the call's deadline, or raises `Overloaded`."""
        await self._gate.acquire(call.remaining())
        self._update_gauges()
        cancellation = Cancellation(call.deadline)
        held_since = time.monotonic()
        run = contextvars.copy_context().run  # the worker logs and traces as this request
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, run, work, *args, cancellation)

        def free_slot(_future) -> None:
            self._gate.release(time.monotonic() - held_since)
            self._update_gauges()

        future.add_done_callback(free_slot)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancellation.cancel()
            future.add_done_callback(_consume_result)
            raise

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _update_gauges(self) -> None:
        self._metrics.in_flight.labels(self._service).set(self._gate.in_flight)
        self._metrics.queued.labels(self._service).set(self._gate.queued)


def _consume_result(future) -> None:
    """Reads the outcome of an abandoned inference so asyncio does not report it as lost."""
    if not future.cancelled():
        future.exception()
