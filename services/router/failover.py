"""Failover: a request goes to the backends of its route in order until one answers.

A backend that refuses with RESOURCE_EXHAUSTED (full) or UNAVAILABLE (down, loading,
draining) sends the request on: to the same target again, where round_robin picks another
replica, then to the next backend of the chain. Recognizing a clip is a pure function of it,
so repeating a request that a replica dropped half-way is safe. Any other status is the
answer and goes back to the client as it is. Attempts are bounded in number and by the
client's deadline. The attempts themselves are the core's retry mechanism
(`services/core/retry.py`); this module plans them over the router's backends and counts them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc

from services.core.calls import Call
from services.core.retry import Retrying, RetryPolicy
from services.router.metrics import RouterMetrics
from services.router.pool import BackendChannel, BackendPool
from services.router.settings import FailoverSettings

T = TypeVar("T")


class Failover:
    def __init__(self, pool: BackendPool, settings: FailoverSettings, metrics: RouterMetrics):
        self.pool = pool
        self._settings = settings
        self._metrics = metrics
        self._policy = RetryPolicy(max_attempts=settings.max_attempts)

    def plan(self, chain: tuple[str, ...]) -> list[str]:
        """The backends to try, in order: serving ones first; all of them when none is known
        to be serving, since the health view may lag behind a backend that just came up."""
        healthy = [name for name in chain if self.pool.healthy(name)]
        order = healthy or list(chain)
        return [name for name in order for _ in range(self._settings.tries_per_backend)]

    async def call(
        self,
        call: Call,
        chain: tuple[str, ...],
        invoke: Callable[[BackendChannel, float], Awaitable[T]],
    ) -> T:
        """`invoke(backend, timeout_s)` on each backend of the plan until one answers."""
        return await self._retrying(call).call(
            lambda: self.plan(chain),
            lambda name, timeout: invoke(self.pool[name], timeout),
            call.deadline,
            call.language,
        )

    def stream(
        self,
        call: Call,
        chain: tuple[str, ...],
        invoke: Callable[[BackendChannel, float], AsyncIterator[T]],
        replayable: Callable[[], bool],
    ) -> AsyncIterator[T]:
        """The answers of a streaming `invoke(backend, timeout_s)` from the first backend of
        the plan that takes it (see `Retrying.stream`)."""
        return self._retrying(call).stream(
            lambda: self.plan(chain),
            lambda name, timeout: invoke(self.pool[name], timeout),
            call.deadline,
            call.language,
            replayable,
        )

    def _retrying(self, call: Call) -> Retrying:
        def count(backend: str, code: grpc.StatusCode, tried_again: bool) -> None:
            """Counts an attempt, and a failover after it, and marks it on the call's span."""
            labels = (self._metrics.service, call.method, call.language, backend, code.name)
            self._metrics.attempts.labels(*labels).inc()
            if tried_again:
                self._metrics.failovers.labels(*labels).inc()
            call.span.add_event("backend attempt", {"backend": backend, "code": code.name})

        return Retrying(self._policy, count)
