"""Dynamic batching: model passes of concurrent requests run together.

A backend routes its model passes (Whisper's encoder and decoder, a CTC model's forward) through
`Batcher.run`: each caller's item waits, grouped with items of the same kind and key (the
shape and options a batched pass needs alike), and a runner thread runs the group as one
batch, up to `max_batch_size` items, while the callers wait for their part.

A group runs as soon as it is full, or as soon as no other producer (a thread inside a
backend call, see `producing`) is still on its way to add to it, or when no item has joined
it for `window_s` (at the latest `MAX_WINDOWS` windows after its first item). A lone request
therefore never waits for company: with nobody else in a backend call its pass runs at once,
as it would unbatched. `runners` threads run batches, so at most that many run at once.

Items of one group from several requests are taken in turn, request by request, so a long
request's many pieces never keep a short request's one piece out of the next batch. A
request that is cancelled or passes its deadline takes its items out of the queue and leaves
at once, its slot free; an item already in a running batch is simply not read.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.core.cancellation import Cancellation
from services.core.errors import NotReady
from services.core.priority import lower_this_thread

STOPPING = "the service is stopping"
# How often a waiting caller looks at its request's cancellation and deadline.
POLL_S = 0.05
# The longest a group waits for more items, in windows from its first item.
MAX_WINDOWS = 4

BatchFunction = Callable[[list[Any]], Sequence[Any]]


class BatchMetrics(Protocol):
    """What the batcher reports (ServiceMetrics' `batch_size` and `batch_wait`)."""

    def batch_ran(self, kind: str, size: int, waits_s: list[float]) -> None: ...


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int = 1
    window_s: float = 0.0
    runners: int = 1

    def __post_init__(self):
        if self.max_batch_size < 1 or self.runners < 1 or self.window_s < 0:
            raise ValueError("max_batch_size and runners must be >= 1, window_s >= 0")


@dataclass(eq=False)
class _Entry:
    group: tuple[str, Hashable]
    item: Any
    owner: Hashable
    enqueued: float = field(default_factory=time.monotonic)
    future: Future = field(default_factory=Future)


class Batcher:
    def __init__(self, limits: BatchLimits, metrics: BatchMetrics | None = None, nice: int = 0):
        self.limits = limits
        self._metrics = metrics
        self._nice = nice  # the runners' priority below the event loop (see priority.py)
        self._runners: list[threading.Thread] = []
        self._closed = False
        self._functions: dict[str, BatchFunction] = {}
        self._pending: dict[tuple[str, Hashable], list[_Entry]] = {}
        self._cond = threading.Condition()
        self._running = 0  # batches running now
        self._producers = 0
        self._blocked = 0  # producers waiting for their items
        self._local = threading.local()

    @property
    def enabled(self) -> bool:
        return self.limits.max_batch_size > 1

    def resize(self, limits: BatchLimits) -> None:
        """New limits (the GPU memory bound sizes them after warm-up)."""
        with self._cond:
            self.limits = limits
            self._cond.notify_all()
        self._start_runners()

    def register(self, kind: str, function: BatchFunction) -> None:
        """`function(items)` runs one batch of `kind` and returns one result per item, in
        order; a result that is an exception is raised to that item's caller alone."""
        self._functions[kind] = function

    @contextlib.contextmanager
    def producing(self, owner: Hashable) -> Iterator[None]:
        """Marks the calling thread as on its way to submit passes for `owner` (a request):
        groups wait for it, within the window, rather than run without its items."""
        if getattr(self._local, "owner", None) is not None:  # nested: already counted
            yield
            return
        with self._cond:
            self._producers += 1
        self._local.owner = owner
        try:
            yield
        finally:
            self._local.owner = None
            with self._cond:
                self._producers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def direct(self) -> Iterator[None]:
        """The calling thread's passes run at once, on it, each alone: for decodes where
        latency comes first (streams, unless `stream_batching`)."""
        self._local.direct = True
        try:
            yield
        finally:
            self._local.direct = False

    def run(
        self, kind: str, key: Hashable, item: Any, cancellation: Cancellation | None = None
    ) -> Any:
        """The result of `item` in a batch of `kind` with the other items of `key`."""
        return self.run_many(kind, [(key, item)], cancellation)[0]

    def run_many(
        self,
        kind: str,
        keyed: Sequence[tuple[Hashable, Any]],
        cancellation: Cancellation | None = None,
    ) -> list[Any]:
        """The results of several (key, item) of one caller (a long piece's windows), each
        batched with whatever else waits with its key."""
        if kind not in self._functions:
            raise KeyError(f"no batch function for {kind!r}")
        if getattr(self._local, "direct", False):
            return [_raised(self._functions[kind]([item])[0]) for _, item in keyed]
        owner = getattr(self._local, "owner", None)
        producer = owner is not None
        owner = owner if producer else threading.get_ident()
        entries = [_Entry((kind, key), item, owner) for key, item in keyed]
        with self._cond:
            if self._closed:
                raise NotReady(STOPPING)
            for entry in entries:
                self._pending.setdefault(entry.group, []).append(entry)
            self._blocked += producer
            self._cond.notify_all()
        try:
            self._wait(entries, cancellation)
        finally:
            with self._cond:
                self._blocked -= producer
                self._cond.notify_all()
        return [entry.future.result() for entry in entries]

    def _wait(self, entries: list[_Entry], cancellation: Cancellation | None) -> None:
        """Until this caller's items are done; a cancelled caller's queued items leave, and
        it returns at once, whatever a running batch still does with the others."""
        self._start_runners()
        futures = [entry.future for entry in entries]
        while True:
            done, _ = wait(futures, timeout=POLL_S)
            if len(done) == len(futures):
                return
            if cancellation is not None and _stopped(cancellation):
                with self._cond:
                    self._withdraw(entries)
                cancellation.check()

    def _start_runners(self) -> None:
        """The threads that run batches, started on first use: CTranslate2 and torch are
        called from these few long-lived threads only (CTranslate2 with one replica was
        seen to run several times slower when each request's own thread called it)."""
        if len(self._runners) >= self.limits.runners:
            return
        with self._cond:
            while len(self._runners) < self.limits.runners:
                runner = threading.Thread(
                    target=self._run_batches, name=f"batch-{len(self._runners)}", daemon=True
                )
                self._runners.append(runner)
                runner.start()

    def _run_batches(self) -> None:
        lower_this_thread(self._nice)
        while True:
            with self._cond:
                batch = None
                while batch is None:
                    if self._closed:
                        return
                    batch = self._take_ready(time.monotonic())
                    if batch is None:
                        self._cond.wait(self._sleep_s(time.monotonic()))
                self._running += 1
            try:
                self._execute(batch)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def shutdown(self) -> None:
        """Stops the runners; whatever still waits in the queue fails NotReady, so that no
        caller waits for a batch that will never run (nor keeps the process from exiting)."""
        with self._cond:
            self._closed = True
            for entries in self._pending.values():
                for entry in entries:
                    if not entry.future.done():
                        entry.future.set_exception(NotReady(STOPPING))
            self._pending.clear()
            self._cond.notify_all()

    def _take_ready(self, now: float) -> list[_Entry] | None:
        """The ready group with the oldest item, taken out of the queue (lock held)."""
        if self._running >= self.limits.runners:
            return None
        ready = [
            entries
            for entries in self._pending.values()
            if entries and self._is_ready(entries, now)
        ]
        if not ready:
            return None
        entries = min(ready, key=lambda group: group[0].enqueued)
        batch = fair_share(entries, self.limits.max_batch_size)
        taken = set(map(id, batch))
        entries[:] = [entry for entry in entries if id(entry) not in taken]
        if not entries:
            del self._pending[batch[0].group]
        return batch

    def _is_ready(self, entries: list[_Entry], now: float) -> bool:
        if len(entries) >= self.limits.max_batch_size:
            return True
        if self._producers - self._blocked <= 0:
            return True  # nobody else is on the way: waiting would only add latency
        return now >= self._closes(entries)

    def _closes(self, entries: list[_Entry]) -> float:
        """When a group stops waiting: a window after its latest item (items that keep coming
        within the window of each other batch together), at most `MAX_WINDOWS` windows after
        its first."""
        window = self.limits.window_s
        return min(entries[-1].enqueued + window, entries[0].enqueued + MAX_WINDOWS * window)

    def _sleep_s(self, now: float) -> float:
        """Until the next group's window closes, or the next look at cancellation."""
        waits = [self._closes(entries) - now for entries in self._pending.values() if entries]
        return max(0.0005, min([POLL_S, *waits]))

    def _withdraw(self, entries: list[_Entry]) -> None:
        """A cancelled caller's items leave the queue; those running are left to finish."""
        mine = set(map(id, entries))
        for group, queued in list(self._pending.items()):
            queued[:] = [entry for entry in queued if id(entry) not in mine]
            if not queued:
                del self._pending[group]

    def _execute(self, batch: list[_Entry]) -> None:
        kind = batch[0].group[0]
        started = time.monotonic()
        if self._metrics is not None:
            self._metrics.batch_ran(kind, len(batch), [started - e.enqueued for e in batch])
        try:
            results = self._functions[kind]([entry.item for entry in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{kind} batch gave {len(results)} results for {len(batch)}")
        except BaseException as error:  # every caller of this batch gets the failure
            for entry in batch:
                entry.future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for entry, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                entry.future.set_exception(result)
            else:
                entry.future.set_result(result)


def fair_share(entries: list[_Entry], limit: int) -> list[_Entry]:
    """Up to `limit` entries, taken in turn from each owner in the order owners first queued,
    each owner's own in the order it queued them."""
    if len(entries) <= limit:
        return list(entries)
    by_owner: dict[Hashable, collections.deque[_Entry]] = {}
    for entry in entries:
        by_owner.setdefault(entry.owner, collections.deque()).append(entry)
    taken: list[_Entry] = []
    while len(taken) < limit:
        for queue in by_owner.values():
            if queue and len(taken) < limit:
                taken.append(queue.popleft())
    return sorted(taken, key=lambda entry: entry.enqueued)


def _raised(result: Any) -> Any:
    if isinstance(result, BaseException):
        raise result
    return result


def _stopped(cancellation: Cancellation) -> bool:
    try:
        cancellation.check()
    except Exception:
        return True
    return False


# What `max_batch_size` 0 means on a GPU, where a lone window leaves most of the card idle.
# On a CPU it means 1: there a batch of windows costs about as much as the windows one by one,
# and waiting for company only adds (docs/benchmarks.md).
GPU_BATCH_SIZE = 8


def limits_for(
    max_batch_size: int, window_ms: float, max_concurrency: int, device: str = "cpu"
) -> BatchLimits:
    """The service's limits: with batching on, enough batches at once for `max_concurrency`
    requests of one piece each; with it off, one pass per request, as many as there are slots."""
    if max_batch_size == 0:
        max_batch_size = GPU_BATCH_SIZE if device == "cuda" else 1
    if max_batch_size <= 1:
        return BatchLimits(1, 0.0, max_concurrency)
    runners = -(-max_concurrency // max_batch_size)
    return BatchLimits(max_batch_size, window_ms / 1000, runners)
