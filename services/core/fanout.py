"""A request's pieces in flight at once, so that a batching backend decodes them together.

Long audio is cut into pieces; a backend that batches (`Backend.batches`) gains only when
several of them reach it at the same time. `Fanout.map` runs up to `limit` of one request's
pieces at once on shared model threads and returns their results in order. It returns only
when every piece it started has stopped, so the request's inference slot is still given back
only when no thread works for it any more.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TypeVar

from services.core.cancellation import Cancellation
from services.core.priority import model_threads

T = TypeVar("T")
R = TypeVar("R")


class Fanout:
    def __init__(self, threads: int, nice: int):
        self._executor = model_threads(max(1, threads), "piece", nice)

    def map(
        self,
        work: Callable[[T], R],
        items: Sequence[T],
        limit: int,
        cancellation: Cancellation,
    ) -> list[R]:
        """`work(item)` for every item, at most `limit` at once; the first failure is raised
        once the pieces already running have stopped, and no further piece starts."""
        if limit <= 1 or len(items) <= 1:
            return [work(item) for item in items]
        results: dict[int, R] = {}
        running: dict[Future, int] = {}
        failure: BaseException | None = None
        upcoming = iter(enumerate(items))
        while True:
            while failure is None and len(running) < limit:
                nxt = next(upcoming, None)
                if nxt is None:
                    break
                index, item = nxt
                run = contextvars.copy_context().run  # logs and traces as the request
                running[self._executor.submit(run, work, item)] = index
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                error = future.exception()
                if error is None:
                    results[index] = future.result()
                elif failure is None:
                    failure = error
                    # The others stop at their next check rather than finish for nothing.
                    cancellation.cancel("another piece of the request failed")
        if failure is not None:
            raise failure
        return [results[index] for index in range(len(items))]

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
