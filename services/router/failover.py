"""Failover: a request goes to the backends of its route in order until one answers.

A backend that refuses with RESOURCE_EXHAUSTED (full) or UNAVAILABLE (down, loading,
draining) sends the request on: to the same target again, where round_robin picks another
replica, then to the next backend of the chain. Recognizing a clip is a pure function of it,
so repeating a request that a replica dropped half-way is safe. Any other status is the
answer and goes back to the client as it is: INVALID_ARGUMENT is never retried. Attempts are
bounded in number and by the client's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry import trace

from services.core.errors import DeadlineExceeded, NoBackend, Overloaded, Relayed
from services.router.metrics import RouterMetrics
from services.router.pool import BackendChannel, BackendPool
from services.router.settings import RouterSettings

RETRYABLE = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE})
# When a full backend gave no retry hint: about one short inference.
DEFAULT_RETRY_S = 1.0
T = TypeVar("T")


@dataclass
class Call:
    """What the router knows of the request it is serving, for calls made on its behalf."""

    method: str
    language: str  # the metrics label: a route pattern, "detect" or "unknown"
    deadline: float  # time.monotonic() value
    metadata: tuple[tuple[str, str], ...]
    span: trace.Span  # the router's server span, for attempt events
    request_id: str = ""

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass(frozen=True)
class Refusal:
    backend: str
    code: grpc.StatusCode
    details: str
    retry_after_s: float | None


class Failover:
    def __init__(self, pool: BackendPool, settings: RouterSettings, metrics: RouterMetrics):
        self.pool = pool
        self._settings = settings
        self._metrics = metrics

    def plan(self, chain: tuple[str, ...]) -> list[str]:
        """The backends to try, in order: serving ones first; all of them when none is known
        to be serving, since the health view may lag behind a backend that just came up."""
        serving = [name for name in chain if self.pool.serving(name)]
        order = serving or list(chain)
        tries = [name for name in order for _ in range(self._settings.tries_per_backend)]
        return tries[: self._settings.max_attempts]

    async def call(
        self,
        call: Call,
        chain: tuple[str, ...],
        invoke: Callable[[BackendChannel, float], Awaitable[T]],
    ) -> T:
        """`invoke(backend, timeout_s)` on each backend of the plan until one answers."""
        refusals: list[Refusal] = []
        plan = self.plan(chain)
        for position, name in enumerate(plan):
            timeout = call.remaining()
            if timeout <= 0:
                raise DeadlineExceeded(f"the deadline passed after {position} backend attempts")
            try:
                response = await invoke(self.pool[name], timeout)
            except grpc.aio.AioRpcError as error:
                self.count(call, "attempts", name, error.code())
                if error.code() not in RETRYABLE:
                    raise relayed(error) from None
                refusals.append(refusal(name, error))
                if position + 1 < len(plan):
                    self.count(call, "failovers", name, error.code())
                continue
            self.count(call, "attempts", name, grpc.StatusCode.OK)
            return response
        raise exhausted(call.language, refusals)

    def count(self, call: Call, counter: str, backend: str, code: grpc.StatusCode) -> None:
        """Counts an attempt or a failover, and marks it on the router's span."""
        getattr(self._metrics, counter).labels(
            self._metrics.service, call.method, call.language, backend, code.name
        ).inc()
        if counter == "attempts":
            call.span.add_event("backend attempt", {"backend": backend, "code": code.name})


def exhausted(language: str, refusals: list[Refusal]) -> Overloaded | NoBackend:
    """The error for a request every backend refused: overloaded with the shortest retry hint
    when any was full, else no backend available."""
    tried = "; ".join(f"{r.backend}: {r.code.name} ({r.details})" for r in refusals)
    full = [r for r in refusals if r.code is grpc.StatusCode.RESOURCE_EXHAUSTED]
    if full:
        hints = [r.retry_after_s for r in full if r.retry_after_s is not None]
        return Overloaded(
            f"every backend for {language!r} is at capacity: {tried}",
            min(hints, default=DEFAULT_RETRY_S),
        )
    return NoBackend(f"no backend for {language!r} could take the request: {tried}")


def relayed(error: grpc.RpcError) -> Relayed:
    trailers = tuple(error.trailing_metadata() or ())
    return Relayed(error.code(), error.details() or "", trailers)


def refusal(backend: str, error: grpc.RpcError) -> Refusal:
    return Refusal(backend, error.code(), error.details() or "", retry_after_s(error))


def retry_after_s(error: grpc.RpcError) -> float | None:
    """The backend's retry hint: its `grpc-retry-pushback-ms` trailer, else its RetryInfo."""
    trailers = dict(tuple(error.trailing_metadata() or ()))
    pushback = trailers.get("grpc-retry-pushback-ms")
    if isinstance(pushback, str) and pushback.isdigit():
        return int(pushback) / 1000
    try:
        status = rpc_status.from_call(error)
    except ValueError:  # details that contradict the status: ignore them
        return None
    for detail in status.details if status else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToTimedelta().total_seconds()
    return None
