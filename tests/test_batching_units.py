"""The core's batcher and fan-out, with plain functions as the model: who waits for whom, what
runs together, and what a cancelled or failing caller does to the others."""

import threading
import time

import pytest

from services.core.batching import Batcher, BatchLimits, fair_share, limits_for
from services.core.cancellation import Cancellation
from services.core.errors import Cancelled, DeadlineExceeded, NotReady
from services.core.fanout import Fanout


class Recorder:
    """A batch function that doubles numbers and records every batch it ran."""

    def __init__(self, delay_s: float = 0.0):
        self.batches: list[list] = []
        self.delay_s = delay_s
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, items):
        with self._lock:
            self.batches.append(list(items))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(self.delay_s)
        with self._lock:
            self.running -= 1
        return [item * 2 for item in items]


class Metrics:
    def __init__(self):
        self.ran: list[tuple[str, int, list[float]]] = []

    def batch_ran(self, kind, size, waits_s):
        self.ran.append((kind, size, waits_s))


def batcher(max_batch_size=8, window_s=0.5, runners=1, delay_s=0.0):
    made = Batcher(BatchLimits(max_batch_size, window_s, runners), Metrics())
    made.register("double", Recorder(delay_s))
    return made, made._functions["double"]


def concurrently(count, work):
    """`work(i)` on `count` threads started together; their results by i. `_produce` waits
    until every thread is inside its backend call before it submits."""
    results, errors = {}, {}
    start = threading.Barrier(count)
    _inside.barrier = threading.Barrier(count)

    def run(i):
        start.wait()
        try:
            results[i] = work(i)
        except Exception as error:
            errors[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results, errors


def test_a_lone_caller_runs_at_once_whatever_the_window():
    made, recorder = batcher(window_s=5.0)
    started = time.perf_counter()
    with made.producing("only"):
        assert made.run("double", None, 21) == 42
    assert time.perf_counter() - started < 0.5
    assert recorder.batches == [[21]]


def test_concurrent_producers_share_one_batch_and_get_their_own_results():
    made, recorder = batcher(max_batch_size=8, window_s=2.0)
    results, errors = concurrently(5, lambda i: _produce(made, f"request {i}", i))
    assert not errors and results == {i: 2 * i for i in range(5)}
    assert len(recorder.batches) == 1 and sorted(recorder.batches[0]) == list(range(5))
    assert made._metrics.ran[0][:2] == ("double", 5)


def test_batches_stop_at_the_size_limit_and_keys_never_mix():
    made, recorder = batcher(max_batch_size=3, window_s=2.0)
    results, errors = concurrently(
        7, lambda i: _produce(made, f"request {i}", i, key="odd" if i % 2 else "even")
    )
    assert not errors and results == {i: 2 * i for i in range(7)}
    assert all(len(batch) <= 3 for batch in recorder.batches)
    assert all(len({item % 2 for item in batch}) == 1 for batch in recorder.batches)


def test_a_producer_still_preparing_holds_a_batch_no_longer_than_the_window():
    made, _ = batcher(window_s=0.2)
    release = threading.Event()

    def slow_producer():
        with made.producing("slow"):
            release.wait(5)  # inside a backend call, but never submitting

    thread = threading.Thread(target=slow_producer)
    thread.start()
    time.sleep(0.05)
    started = time.perf_counter()
    with made.producing("quick"):
        assert made.run("double", None, 1) == 2
    waited = time.perf_counter() - started
    release.set()
    thread.join(5)
    assert 0.18 <= waited < 1.0, waited


def test_one_requests_many_items_leave_room_for_another_request():
    made, recorder = batcher(max_batch_size=4, window_s=2.0, delay_s=0.05)

    def work(i):
        with made.producing(f"request {i}"):
            if i == 0:
                return made.run_many("double", [(None, n) for n in range(100, 110)])
            return made.run("double", None, i)

    results, errors = concurrently(2, work)
    assert not errors and results[1] == 2 and results[0] == [2 * n for n in range(100, 110)]
    first_with_one = next(batch for batch in recorder.batches if 1 in batch)
    assert recorder.batches.index(first_with_one) == 0  # not behind the long request's items


def test_fair_share_takes_owners_in_turn():
    from services.core.batching import _Entry

    entries = [_Entry(("k", None), f"a{i}", "a") for i in range(5)]
    entries += [_Entry(("k", None), "b0", "b"), _Entry(("k", None), "c0", "c")]
    assert sorted(e.item for e in fair_share(entries, 4)) == ["a0", "a1", "b0", "c0"]


def test_a_cancelled_caller_leaves_the_queue_and_the_others_go_on():
    made, recorder = batcher(runners=1, window_s=0.0, delay_s=0.4)
    cancellation = Cancellation()
    blocker = threading.Thread(target=lambda: made.run("double", "first", 0))
    blocker.start()  # holds the only runner for 0.4 s
    time.sleep(0.1)
    outcome = {}

    def cancelled_caller():
        try:
            made.run("double", "second", 99, cancellation)
        except Cancelled as error:
            outcome["error"] = error

    caller = threading.Thread(target=cancelled_caller)
    caller.start()
    time.sleep(0.05)
    cancellation.cancel()
    caller.join(2)
    assert isinstance(outcome.get("error"), Cancelled)
    blocker.join(2)
    assert made.run("double", "third", 5) == 10
    assert all(99 not in batch for batch in recorder.batches)


def test_a_deadline_passed_while_waiting_is_deadline_exceeded():
    made, _ = batcher(runners=1, window_s=0.0, delay_s=0.5)
    blocker = threading.Thread(target=lambda: made.run("double", "first", 0))
    blocker.start()
    time.sleep(0.1)
    with pytest.raises(DeadlineExceeded):
        made.run("double", "second", 1, Cancellation(time.monotonic() + 0.1))
    blocker.join(2)


def test_an_item_that_fails_fails_alone_and_a_failed_batch_fails_all_its_callers():
    made = Batcher(BatchLimits(8, 1.0, 1))
    made.register("picky", lambda items: [ValueError(i) if i < 0 else i for i in items])
    made.register("broken", lambda items: 1 / 0)
    results, errors = concurrently(3, lambda i: _produce(made, i, i - 1, kind="picky"))
    assert results == {1: 0, 2: 1} and isinstance(errors[0], ValueError)
    results, errors = concurrently(3, lambda i: _produce(made, i, i, kind="broken"))
    assert not results and all(isinstance(e, ZeroDivisionError) for e in errors.values())


def test_no_more_batches_run_at_once_than_runners():
    made, recorder = batcher(max_batch_size=1, window_s=0.0, runners=2, delay_s=0.1)
    results, errors = concurrently(6, lambda i: _produce(made, i, i))
    assert not errors and len(results) == 6
    assert recorder.most_at_once == 2


def test_a_caller_waiting_when_the_batcher_shuts_down_fails_not_ready():
    made, recorder = batcher(max_batch_size=2, window_s=30.0)
    outcome = {}
    ready, release = threading.Event(), threading.Event()

    def other_producer():  # on its way, so the lone item waits for it within the window
        with made.producing("other"):
            ready.set()
            release.wait(10)

    def caller():
        with made.producing("waiting"):
            try:
                outcome["result"] = made.run("double", None, 1)
            except NotReady as error:
                outcome["error"] = error

    producer = threading.Thread(target=other_producer)
    producer.start()
    ready.wait(5)
    waiting = threading.Thread(target=caller)
    waiting.start()
    time.sleep(0.3)  # the item is queued, its group waiting for the other producer
    made.shutdown()
    waiting.join(5)
    release.set()
    producer.join(5)
    assert not waiting.is_alive(), "the caller still waits for a batch that will never run"
    assert str(outcome["error"]) == "the service is stopping"
    assert recorder.batches == []
    with pytest.raises(NotReady):
        made.run("double", None, 2)  # nothing is queued once it is shut down


def test_limits_follow_the_settings():
    assert limits_for(1, 20, 4) == BatchLimits(1, 0.0, 4)  # off: one pass per slot
    assert limits_for(8, 20, 4) == BatchLimits(8, 0.02, 1)
    assert limits_for(8, 20, 12) == BatchLimits(8, 0.02, 2)
    # 0, the default: batches of 8 on a GPU, none on a CPU.
    assert limits_for(0, 20, 4, "cuda") == BatchLimits(8, 0.02, 1)
    assert limits_for(0, 20, 4, "cpu") == BatchLimits(1, 0.0, 4)


def test_fanout_keeps_the_order_bounds_the_pieces_in_flight_and_stops_at_a_failure():
    fanout = Fanout(8, 0)
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def piece(n):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.02)
        with lock:
            in_flight[0] -= 1
        return n * n

    assert fanout.map(piece, list(range(10)), 3, Cancellation()) == [n * n for n in range(10)]
    assert most[0] == 3
    started = []
    cancellation = Cancellation()

    def failing(n):
        started.append(n)
        if n == 1:
            raise ValueError("piece 1")
        time.sleep(0.05)
        cancellation.check()
        return n

    with pytest.raises(ValueError, match="piece 1"):
        fanout.map(failing, list(range(20)), 2, cancellation)
    assert len(started) < 20 and cancellation.cancelled
    fanout.shutdown()


class _Inside:
    barrier: threading.Barrier | None = None


_inside = _Inside()


def _produce(made, owner, item, key=None, kind="double"):
    with made.producing(owner):
        _inside.barrier.wait(5)
        return made.run(kind, key, item)
