"""gRPC front ends on the router's request path: the stt.v1 servicer and the Google and Riva
services each serve their calls through these two functions, which turn a `Refused` into the
status a gRPC client expects (with ErrorInfo, and RetryInfo plus `grpc-retry-pushback-ms`
when every backend was full), and put the request id in the trailers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from services.core.errors import to_grpc_status
from services.core.requests import REQUEST_ID_HEADER
from services.router.failover import Call
from services.router.path import Incoming, Refused, RequestPath

T = TypeVar("T")


async def unary(
    path: RequestPath,
    method: str,
    incoming: Incoming,
    context: grpc.aio.ServicerContext,
    work: Callable[[Call], Awaitable[T]],
) -> T:
    """`work(call)` for one unary call as the stt.v1 request `method`."""
    try:
        async with path.serving(method, incoming) as call:
            response = await work(call)
            context.set_trailing_metadata(((REQUEST_ID_HEADER, call.request_id),))
            return response
    except Refused as refused:
        await context.abort_with_status(to_grpc_status(refused.error, refused.request_id))
        raise  # abort_with_status raises; this line is never reached


async def streaming(
    path: RequestPath,
    method: str,
    incoming: Incoming,
    context: grpc.aio.ServicerContext,
    work: Callable[[Call], AsyncIterator[T]],
) -> AsyncIterator[T]:
    """The responses of `work(call)` for one streaming call as the stt.v1 request `method`."""
    try:
        async with path.serving(method, incoming) as call:
            async for response in work(call):
                yield response
            context.set_trailing_metadata(((REQUEST_ID_HEADER, call.request_id),))
    except Refused as refused:
        await context.abort_with_status(to_grpc_status(refused.error, refused.request_id))


def generic_handler(
    service: str,
    unary_methods: dict[str, tuple[Callable[..., Any], Any, Any]],
    stream_methods: dict[str, tuple[Callable[..., Any], Any, Any]],
) -> grpc.GenericRpcHandler:
    """A handler for `service` whose methods are given as (behaviour, request message class,
    response message class): the message types a client package ships."""
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
