"""The router's stt.v1.Speech: each call goes down the router's request path (see `path.py`),
which routes it to a backend for its language, with failover; LongRunningRecognize goes to the
job store (see `services/jobs/service.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from stt.v1 import stt_pb2_grpc

from services.jobs.service import OperationsServicer
from services.router import grpc_front
from services.router.failover import Call
from services.router.info import service_info
from services.router.path import Incoming, RequestPath

API = "stt"


class RouterServicer(stt_pb2_grpc.SpeechServicer):
    def __init__(self, path: RequestPath, operations: OperationsServicer):
        self._path = path
        self._operations = operations

    async def Recognize(self, request, context):
        return await self._unary(
            "Recognize", context, lambda call, _: self._path.recognize(call, request)
        )

    async def LongRunningRecognize(self, request, context):
        return await self._unary(
            "LongRunningRecognize",
            context,
            lambda call, incoming: self._operations.accept(call, request, incoming.metadata),
        )

    async def DetectLanguage(self, request, context):
        return await self._unary(
            "DetectLanguage", context, lambda call, _: self._path.detect(call, request)
        )

    async def StreamingRecognize(self, request_iterator, context):
        incoming = Incoming.from_grpc(API, "stt.v1.Speech/StreamingRecognize", context)

        async def relay(call):
            requests = aiter(request_iterator)
            async for response in self._path.stream(call, await anext(requests, None), requests):
                yield response

        async for response in grpc_front.streaming(
            self._path, "StreamingRecognize", incoming, context, relay
        ):
            yield response

    async def GetServiceInfo(self, request, context):
        path = self._path
        return await service_info(path.table, path.pool, path.lifecycle, path.settings)

    async def _unary(self, method: str, context, work: Callable[[Call, Incoming], Awaitable]):
        """One unary stt.v1 call down the request path: `work(call, incoming)` answers it."""
        incoming = Incoming.from_grpc(API, f"stt.v1.Speech/{method}", context)
        return await grpc_front.unary(
            self._path, method, incoming, context, lambda call: work(call, incoming)
        )
