"""The router's stt.v1 front ends: `stt.v1.Speech`, whose calls go down the router's request
path (see `path.py`), routed to a backend for their language with failover, and
LongRunningRecognize to the job store (see `jobs/servicer.py`); and `stt.v1.Diarization`,
relayed to the diarization service (the job workers label speakers through it)."""

from __future__ import annotations

from stt.v1 import stt_pb2_grpc

import services
from services.core.calls import Call, CallScope
from services.core.names import DIARIZATION_SERVICE, SPEECH_SERVICE
from services.core.rpc import stream_rpc, unary_rpc
from services.core.servicer import INFO_STATES
from services.router.health import RouterLifecycle
from services.router.jobs.servicer import OperationsServicer
from services.router.path import RequestPath

API = "stt"


class RouterServicer(stt_pb2_grpc.SpeechServicer):
    api = API
    rpc_service = SPEECH_SERVICE
    request_id_of = None

    def __init__(
        self,
        calls: CallScope,
        path: RequestPath,
        operations: OperationsServicer,
        lifecycle: RouterLifecycle,
        max_message_bytes: int,
    ):
        self.calls = calls
        self._path = path
        self._operations = operations
        self._lifecycle = lifecycle
        self._max_message_bytes = max_message_bytes

    @unary_rpc
    async def Recognize(self, call: Call, request):
        return await self._path.recognize(call, request)

    @unary_rpc
    async def LongRunningRecognize(self, call: Call, request):
        return await self._operations.accept(call, request)

    @unary_rpc
    async def DetectLanguage(self, call: Call, request):
        return await self._path.detect(call, request)

    @stream_rpc
    async def StreamingRecognize(self, call: Call, requests):
        async for response in self._path.stream(call, await anext(requests, None), requests):
            yield response

    @unary_rpc(needs_ready=False)  # it tells the router's state, whatever that is
    async def GetServiceInfo(self, call: Call, request):
        call.language = "none"
        info = await self._path.describe()
        info.version = services.__version__
        info.ready = self._lifecycle.all_covered
        info.state = INFO_STATES[self._lifecycle.state]
        info.max_audio_bytes = self._max_message_bytes
        return info


class RouterDiarization(stt_pb2_grpc.DiarizationServicer):
    api = API
    rpc_service = DIARIZATION_SERVICE
    request_id_of = None

    def __init__(self, calls: CallScope, path: RequestPath):
        self.calls = calls
        self._path = path

    @unary_rpc
    async def Diarize(self, call: Call, request):
        call.language = "und"
        return await self._path.diarize(call, request)
