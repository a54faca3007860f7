"""One call on any server, from arrival to answer, whatever its API: its request scope (id,
trace, logs), readiness, who it is for (its tenant, checked against the router's API keys),
that tenant's fair share, its deadline, the pace of a stream's messages, the mapping of errors
to statuses, and what the server's metrics count of it. Model servers, the router, its drop-in
APIs and its Operations service all serve their calls through a `CallScope`; each server plugs
in its own `CallMetrics` (and the router its `Admission`). gRPC methods are wired to it in
`services/core/rpc.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import grpc
from opentelemetry import trace

from services.core.errors import OutOfRange, Relayed, SttError, to_grpc_status
from services.core.health import Lifecycle
from services.core.names import REQUEST_ID_HEADER
from services.core.requests import open_scope
from services.core.tenants import DEFAULT_TENANT, SHARED_METHODS, TenantShares

log = logging.getLogger("stt.calls")
T = TypeVar("T")


@dataclass(frozen=True)
class Incoming:
    """How a call arrived, whatever its API."""

    api: str  # "stt", "google", "riva", "openai": a metrics label and span attribute
    span_name: str  # the call as its API names it, e.g. "google.cloud.speech.v1.Speech/Recognize"
    metadata: tuple[tuple[str, str], ...]  # gRPC metadata or HTTP headers, lower-case keys
    remaining_s: float | None  # until the client's deadline; None: it set none

    @classmethod
    def from_grpc(cls, api: str, span_name: str, context) -> Incoming:
        metadata = tuple(
            (k, v) for k, v in context.invocation_metadata() or () if isinstance(v, str)
        )
        return cls(api, span_name, metadata, context.time_remaining())


@dataclass
class Call:
    """What a server knows of the call it is serving, for the work done on its behalf."""

    method: str  # the stt.v1 call it is or became: a metrics label
    incoming: Incoming
    request_id: str
    span: trace.Span
    outgoing: tuple[tuple[str, str], ...]  # metadata for calls made on its behalf
    deadline: float | None  # time.monotonic() value; None: no deadline
    started: float = field(default_factory=time.perf_counter)
    language: str = "detect"  # the metrics label: a language or route pattern
    tenant: str = DEFAULT_TENANT  # who the call is for (its API key's tenant on the router)
    # Trailing metadata the answer carries besides the request id (what served it).
    trailing: list[tuple[str, str]] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.incoming.api

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def header(self, key: str) -> str:
        """The value of metadata or header `key` (lower case) the client sent, or ""."""
        return next((v for k, v in self.incoming.metadata if k == key), "")


class CallMetrics(Protocol):
    """What a server counts of its calls (each server's metrics module implements it)."""

    def call_finished(self, call: Call, code: grpc.StatusCode, elapsed_s: float) -> None: ...

    def call_refused(self, call: Call, error: SttError) -> None: ...


class Admission(Protocol):
    """Who a call is for, from how it arrived (the router's API keys and tenant header)."""

    def tenant(self, incoming: Incoming) -> str:
        """The call's tenant; raises Unauthenticated, PermissionDenied or InvalidArgument."""
        ...


class Refusal(Exception):
    """A call answered with an error, already counted: `error` says which."""

    def __init__(self, error: SttError, request_id: str):
        super().__init__(error.message)
        self.error = error
        self.request_id = request_id


class CallScope:
    """`admission` (None: every call is the default tenant's) names each call's tenant;
    `shares`, when given, holds each tenant to its share of the calls that use backends;
    `stream_audio_timeout_s` ends a stream whose client sends nothing for that long."""

    def __init__(
        self,
        service: str,
        lifecycle: Lifecycle,
        metrics: CallMetrics,
        default_timeout_s: float | None = None,
        log_each_call: bool = True,
        *,
        admission: Admission | None = None,
        shares: TenantShares | None = None,
        stream_audio_timeout_s: float | None = None,
    ):
        self._service = service
        self._lifecycle = lifecycle
        self._metrics = metrics
        self._default_timeout_s = default_timeout_s
        self._log_each_call = log_each_call
        self._admission = admission
        self._shares = shares
        self.stream_audio_timeout_s = stream_audio_timeout_s
        self.in_flight = 0  # calls being served now: what a drain waits for

    @contextlib.asynccontextmanager
    async def serving(
        self, method: str, incoming: Incoming, *, needs_ready: bool = True
    ) -> AsyncIterator[Call]:
        """One call: its scope, readiness (unless it describes the server, which answers
        while loading), its tenant and share, metrics and trace. An error leaves as `Refusal`
        once it is counted; anything but an `SttError` is logged and becomes INTERNAL."""
        with self._scope(incoming) as scope:
            call = Call(
                method,
                incoming,
                scope.request_id,
                scope.span,
                scope.outgoing_metadata(),
                self._deadline(incoming.remaining_s),
            )
            refusal, shared = None, False
            self.in_flight += 1
            try:
                if needs_ready:
                    self._lifecycle.require_ready()
                if self._admission is not None:
                    call.tenant = self._admission.tenant(incoming)
                    scope.span.set_attribute("stt.tenant", call.tenant)
                if self._shares is not None and method in SHARED_METHODS:
                    self._shares.take(call.tenant)
                    shared = True
                yield call
            except SttError as error:
                scope.code = error.code
                refusal = self._refused(call, error)
            except (asyncio.CancelledError, GeneratorExit):
                scope.code = _abandoned(call)
                raise
            except Exception:
                scope.code = grpc.StatusCode.INTERNAL
                log.exception("request failed")
                internal = SttError(f"internal error (request id {scope.request_id})")
                refusal = Refusal(internal, scope.request_id)
            finally:
                self.in_flight -= 1
                if shared:
                    self._shares.give_back(call.tenant)
                self._finished(call, scope.code)
        if refusal is not None:  # raised only now, so the metrics already count it
            raise refusal

    def refuse(self, method: str, incoming: Incoming, error: SttError) -> Refusal:
        """A call refused before it could be served (a request that cannot be read), counted
        and traced like any other."""
        with self._scope(incoming) as scope:
            call = Call(method, incoming, scope.request_id, scope.span, (), None)
            scope.code = error.code
            refusal = self._refused(call, error)
            self._finished(call, error.code)
        return refusal

    async def unary(
        self,
        method: str,
        incoming: Incoming,
        context,
        work: Callable[[Call], Awaitable[T]],
        needs_ready: bool = True,
    ) -> T:
        """`work(call)` for one unary gRPC call, its refusal as the gRPC status."""
        try:
            async with self.serving(method, incoming, needs_ready=needs_ready) as call:
                response = await work(call)
                context.set_trailing_metadata(
                    ((REQUEST_ID_HEADER, call.request_id), *call.trailing)
                )
                return response
        except Refusal as refusal:
            await context.abort_with_status(to_grpc_status(refusal.error, refusal.request_id))
            raise  # abort_with_status raises; this line is never reached

    async def streaming(
        self, method: str, incoming: Incoming, context, work: Callable[[Call], AsyncIterator[T]]
    ) -> AsyncIterator[T]:
        """The responses of `work(call)` for one streaming gRPC call."""
        try:
            async with self.serving(method, incoming) as call:
                async for response in work(call):
                    yield response
                context.set_trailing_metadata(((REQUEST_ID_HEADER, call.request_id),))
        except Refusal as refusal:
            await context.abort_with_status(to_grpc_status(refusal.error, refusal.request_id))

    async def stream_messages(self, messages: AsyncIterator[T]) -> AsyncIterator[T]:
        """A stream's messages as the client sends them; OutOfRange when none comes for
        `stream_audio_timeout_s`, which ends the call and frees what it held."""
        timeout_s = self.stream_audio_timeout_s
        while True:
            try:
                async with asyncio.timeout(timeout_s):
                    message = await anext(messages)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise OutOfRange(f"no audio for {timeout_s:g} s") from None
            yield message

    def _scope(self, incoming: Incoming):
        attributes = {"stt.service": self._service, "stt.api": incoming.api}
        return open_scope(incoming.span_name, incoming.metadata, incoming.remaining_s, attributes)

    def _deadline(self, remaining_s: float | None) -> float | None:
        timeout = self._default_timeout_s if remaining_s is None else remaining_s
        return None if timeout is None else time.monotonic() + timeout

    def _refused(self, call: Call, error: SttError) -> Refusal:
        self._metrics.call_refused(call, error)
        if not isinstance(error, Relayed):  # a backend's answer is logged where it was made
            log.info("request refused", extra={"code": error.code.name, "reason": error.message})
        return Refusal(error, call.request_id)

    def _finished(self, call: Call, code: grpc.StatusCode) -> None:
        elapsed = time.perf_counter() - call.started
        self._metrics.call_finished(call, code, elapsed)
        if not self._log_each_call:
            return
        log.info(
            "request finished",
            extra={
                "method": call.method,
                "api": call.api,
                "code": code.name,
                "language": call.language,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )


def _abandoned(call: Call) -> grpc.StatusCode:
    """Why a call ended early: its deadline passed, or the client went away."""
    remaining = call.remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED
