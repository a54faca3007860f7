"""Calls to other services that may be refused and tried again: the one retry-and-wait
mechanism of every caller (the router's failover over backends, the job worker's patient calls
through the router).

A call goes to the targets of a plan in order until one answers. RESOURCE_EXHAUSTED (full)
and UNAVAILABLE (down, loading, draining) send it on to the next target; any other status is
the answer and goes back as it is (`Relayed`): INVALID_ARGUMENT is never retried. When every
target of the plan refused, an impatient policy (a client waits) gives up with `Overloaded`
(carrying the shortest retry hint) or `NoBackend`; a patient one (a job can wait) sleeps, for
the hint a full target gave or an exponential backoff, and goes round again, until the targets
stayed down for `down_limit_s`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.core.errors import DeadlineExceeded, NoBackend, Overloaded, Relayed
from services.core.names import RETRY_PUSHBACK_HEADER

RETRYABLE = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE})
# When a full target gave no retry hint: about one short inference.
DEFAULT_RETRY_S = 1.0
T = TypeVar("T")
# on_attempt(target, code, tried_again): each attempt's outcome, for metrics and traces.
AttemptObserver = Callable[[str, grpc.StatusCode, bool], None]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 0  # over one round of the plan; 0: the whole plan
    patient: bool = False  # wait and go round again when every target refused
    timeouts_retried: bool = False  # an attempt's DEADLINE_EXCEEDED counts as a target down
    attempt_timeout_s: float | None = None  # each attempt's own deadline; None: the call's
    first_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    down_limit_s: float = 300.0  # patient: how long every target may stay down


@dataclass(frozen=True)
class RefusedAttempt:
    """One target's refusal."""

    target: str
    code: grpc.StatusCode
    details: str
    retry_after_s: float | None


class Retrying:
    def __init__(self, policy: RetryPolicy, on_attempt: AttemptObserver | None = None):
        self._policy = policy
        self._on_attempt = on_attempt or (lambda target, code, again: None)

    async def call(
        self,
        plan: Callable[[], list[str]],
        invoke: Callable[[str, float | None], Awaitable[T]],
        deadline: float | None,
        what: str,
    ) -> T:
        """`invoke(target, timeout_s)` over the targets of `plan()` until one answers;
        `what` names the request in the errors (a route's language, a job)."""
        waiting = _Patience(self._policy)
        while True:
            answered, outcome = await self._round(plan, invoke, deadline)
            if answered:
                return outcome
            if not self._policy.patient:
                raise exhausted(what, outcome)
            await waiting.wait(outcome)

    async def _round(self, plan, invoke, deadline: float | None) -> tuple[bool, Any]:
        """One pass over the plan: (True, the answer), or (False, every target's refusal)."""
        refusals: list[RefusedAttempt] = []
        targets = self._targets(plan)
        for position, target in enumerate(targets):
            timeout = self._timeout(deadline, position)
            try:
                response = await invoke(target, timeout)
            except grpc.RpcError as error:
                if not self._retryable(error.code()):
                    self._on_attempt(target, error.code(), False)
                    raise relayed(error) from None
                refusals.append(refused_attempt(target, error))
                last = position + 1 == len(targets)
                self._on_attempt(target, error.code(), self._policy.patient or not last)
                continue
            self._on_attempt(target, grpc.StatusCode.OK, False)
            return True, response
        return False, refusals

    async def stream(
        self,
        plan: Callable[[], list[str]],
        invoke: Callable[[str, float | None], AsyncIterator[T]],
        deadline: float | None,
        what: str,
        replayable: Callable[[], bool],
    ) -> AsyncIterator[T]:
        """The answers of a streaming call, `invoke(target, timeout_s)`, from the first target
        of one round of `plan()` that takes it. A refused stream moves on only while
        `replayable()` (nothing answered yet, the messages sent so far kept): after that its
        status is the caller's."""
        refusals = []
        targets = self._targets(plan)
        for position, target in enumerate(targets):
            timeout = self._timeout(deadline, position)
            try:
                async for answer in invoke(target, timeout):
                    yield answer
            except grpc.RpcError as error:
                if not self._retryable(error.code()) or not replayable():
                    self._on_attempt(target, error.code(), False)
                    raise relayed(error) from None
                refusals.append(refused_attempt(target, error))
                self._on_attempt(target, error.code(), position + 1 < len(targets))
                continue
            self._on_attempt(target, grpc.StatusCode.OK, False)
            return
        raise exhausted(what, refusals)

    def _targets(self, plan: Callable[[], list[str]]) -> list[str]:
        targets = plan()
        return targets[: self._policy.max_attempts] if self._policy.max_attempts else targets

    def _retryable(self, code: grpc.StatusCode) -> bool:
        return code in RETRYABLE or (
            self._policy.timeouts_retried and code is grpc.StatusCode.DEADLINE_EXCEEDED
        )

    def _timeout(self, deadline: float | None, position: int) -> float | None:
        own = self._policy.attempt_timeout_s
        if deadline is None:
            return own
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(f"the deadline passed after {position} backend attempts")
        return remaining if own is None else min(own, remaining)


class _Patience:
    """How long a patient caller waits before it goes round the plan again: the hint a full
    target gave (a full service is waited out for as long as it lasts), else an exponential
    backoff, until the targets stayed down for `down_limit_s`."""

    def __init__(self, policy: RetryPolicy):
        self._policy = policy
        self._backoff = policy.first_backoff_s
        self._down_since: float | None = None

    async def wait(self, refusals: list[RefusedAttempt]) -> None:
        policy = self._policy
        full = [r for r in refusals if r.code is grpc.StatusCode.RESOURCE_EXHAUSTED]
        if full:
            self._down_since = None
            hints = [r.retry_after_s for r in full if r.retry_after_s is not None]
            delay = min(hints, default=self._backoff)
        else:
            self._down_since = self._down_since or time.monotonic()
            if time.monotonic() - self._down_since > policy.down_limit_s:
                raise NoBackend(f"{_tried(refusals)} for {policy.down_limit_s:g} s")
            delay = self._backoff
        self._backoff = min(self._backoff * 2, policy.max_backoff_s)
        # Jitter, so that callers refused together do not come back together (not a secret:
        # the standard generator is what it needs).
        jitter = random.uniform(0.8, 1.2)  # nosec B311 # spreads retries, guards nothing
        await asyncio.sleep(min(delay, policy.max_backoff_s) * jitter)


def exhausted(what: str, refusals: list[RefusedAttempt]) -> Overloaded | NoBackend:
    """The error for a request every target refused: overloaded with the shortest retry hint
    when any was full, else no backend available."""
    full = [r for r in refusals if r.code is grpc.StatusCode.RESOURCE_EXHAUSTED]
    if full:
        hints = [r.retry_after_s for r in full if r.retry_after_s is not None]
        return Overloaded(
            f"every backend for {what!r} is at capacity: {_tried(refusals)}",
            min(hints, default=DEFAULT_RETRY_S),
        )
    return NoBackend(f"no backend for {what!r} could take the request: {_tried(refusals)}")


def _tried(refusals: list[RefusedAttempt]) -> str:
    return "; ".join(f"{r.target}: {r.code.name} ({r.details})" for r in refusals)


def relayed(error: grpc.RpcError) -> Relayed:
    trailers = tuple(error.trailing_metadata() or ())
    return Relayed(error.code(), error.details() or "", trailers, retry_after_s(error))


def refused_attempt(target: str, error: grpc.RpcError) -> RefusedAttempt:
    return RefusedAttempt(target, error.code(), error.details() or "", retry_after_s(error))


def retry_after_s(error: grpc.RpcError) -> float | None:
    """A refusal's retry hint: its `grpc-retry-pushback-ms` trailer, else its RetryInfo."""
    trailers = dict(tuple(error.trailing_metadata() or ()))
    pushback = trailers.get(RETRY_PUSHBACK_HEADER)
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
