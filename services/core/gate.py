"""Backpressure: a bounded number of inferences at once, and a bounded queue in front of them.

Past both bounds a request is refused at once with a retry hint, so an overloaded service
answers fast instead of piling up work it cannot finish. The gate lives on the event loop;
a slot is given back only when the worker thread holding it has really stopped.
"""

from __future__ import annotations

import asyncio
import collections
import time

from services.core.errors import Overloaded

MIN_RETRY_S, MAX_RETRY_S = 0.05, 30.0


class Gate:
    def __init__(self, max_concurrency: int, max_queue: int, queue_timeout_s: float):
        if max_concurrency < 1 or max_queue < 0:
            raise ValueError("max_concurrency must be >= 1 and max_queue >= 0")
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._queue_timeout_s = queue_timeout_s
        self._in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        # Mean time a slot is held, to turn queue length into a retry hint.
        self._mean_hold_s = 1.0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def retry_after_s(self) -> float:
        ahead = self._in_flight + len(self._waiters)
        estimate = self._mean_hold_s * ahead / self.max_concurrency
        return min(MAX_RETRY_S, max(MIN_RETRY_S, estimate))

    async def acquire(self, timeout_s: float | None = None) -> float:
        """Takes a slot, waiting in the queue if there is room; returns the seconds waited.

        Raises `Overloaded` when the queue is full, or when no slot freed up within the
        queue timeout (or `timeout_s`, the caller's remaining deadline, if shorter).
        """
        if self._in_flight < self.max_concurrency and not self._waiters:
            self._in_flight += 1
            return 0.0
        if len(self._waiters) >= self.max_queue:
            raise Overloaded(self._full_message(), self.retry_after_s())
        started = time.monotonic()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        limit = (
            self._queue_timeout_s if timeout_s is None else min(timeout_s, self._queue_timeout_s)
        )
        try:
            await asyncio.wait_for(asyncio.shield(waiter), limit)
        except TimeoutError:
            self._abandon(waiter)
            raise Overloaded(
                f"no inference slot freed up within {limit:.1f} s in the queue",
                self.retry_after_s(),
            ) from None
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        return time.monotonic() - started

    def release(self, held_s: float) -> None:
        """Gives a slot back: to the first waiter if any, else to the pool."""
        self._mean_hold_s = 0.8 * self._mean_hold_s + 0.2 * held_s
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on; in_flight is unchanged
                return
        self._in_flight -= 1

    def _abandon(self, waiter: asyncio.Future[None]) -> None:
        """A waiter that gave up: leave the queue, or pass on a slot it was just handed."""
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            waiter.cancel()
        elif waiter.done() and not waiter.cancelled():
            self.release(self._mean_hold_s)

    def _full_message(self) -> str:
        return (
            f"service is at capacity: {self._in_flight} of {self.max_concurrency} inference "
            f"slots busy and {len(self._waiters)} of {self.max_queue} queue places taken"
        )
