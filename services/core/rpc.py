"""gRPC methods wired to the core's call scope once: `@unary_rpc` and `@stream_rpc` turn a
method written as `work(self, call, request)` (or an async generator over the client's
messages) into the gRPC handler `(self, request, context)`, answered through `self.calls` with
`self.api` and `self.rpc_service` naming the call (`@unary_rpc(needs_ready=False)` for a call
that describes the server, which answers while it loads); a stream's messages come at the
pace the call scope holds them to; `generic_handler` serves an API whose client package ships
its message types but no servicer (Google's, Riva's)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc

from services.core.calls import Call, CallScope, Incoming
from services.core.errors import SttError, to_grpc_status
from services.core.names import REQUEST_ID_HEADER


class Front(Protocol):
    """A servicer whose methods are wired with `unary_rpc` and `stream_rpc`. One whose API
    carries a request id in its messages (Riva) names it with `request_id_of`."""

    calls: CallScope
    api: str
    rpc_service: str
    request_id_of: Callable[[Any], str] | None


def unary_rpc(
    work: Callable[[Any, Call, Any], Awaitable[Any]] | None = None, *, needs_ready: bool = True
):
    """The gRPC handler of a unary method named as `work` is."""
    if work is None:
        return functools.partial(unary_rpc, needs_ready=needs_ready)
    method = work.__name__

    @functools.wraps(work)
    async def handler(self: Front, request, context):
        incoming = _incoming(self, method, context, request)
        return await self.calls.unary(
            method, incoming, context, lambda c: work(self, c, request), needs_ready
        )

    return handler


def stream_rpc(work: Callable[[Any, Call, AsyncIterator[Any]], AsyncIterator[Any]]):
    """The gRPC handler of a stream-stream method named as `work` is; `work` gets the
    client's messages as an async iterator and yields the responses."""
    method = work.__name__

    @functools.wraps(work)
    async def handler(self: Front, request_iterator, context):
        requests = self.calls.stream_messages(aiter(request_iterator))
        first = None
        if getattr(self, "request_id_of", None) is not None:
            try:
                first = await anext(requests, None)  # read first: it names the request's id
            except SttError as error:  # none came in time
                refusal = self.calls.refuse(method, _incoming(self, method, context, None), error)
                await context.abort_with_status(to_grpc_status(error, refusal.request_id))
            requests = _chained(first, requests)
        incoming = _incoming(self, method, context, first)
        responses = self.calls.streaming(
            method, incoming, context, lambda c: work(self, c, requests)
        )
        async for response in responses:
            yield response

    return handler


def _incoming(front: Front, method: str, context, message) -> Incoming:
    incoming = Incoming.from_grpc(front.api, f"{front.rpc_service}/{method}", context)
    request_id_of = getattr(front, "request_id_of", None)
    sent = request_id_of(message) if request_id_of is not None and message is not None else ""
    if not sent:
        return incoming
    metadata = ((REQUEST_ID_HEADER, sent), *incoming.metadata)
    return Incoming(incoming.api, incoming.span_name, metadata, incoming.remaining_s)


async def _chained(first, rest: AsyncIterator) -> AsyncIterator:
    if first is not None:
        yield first
    async for message in rest:
        yield message


def generic_handler(
    service: str,
    unary_methods: dict[str, tuple[Callable[..., Any], Any, Any]],
    stream_methods: dict[str, tuple[Callable[..., Any], Any, Any]],
) -> grpc.GenericRpcHandler:
    """A handler for `service`, whose methods are given as (handler, request message class,
    response message class)."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )
        for name, (behaviour, request, response) in unary_methods.items()
    }
    for name, (behaviour, request, response) in stream_methods.items():
        handlers[name] = grpc.stream_stream_rpc_method_handler(
            behaviour,
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(service, handlers)
