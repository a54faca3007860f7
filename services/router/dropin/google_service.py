"""`google.cloud.speech.v1.Speech` on the router's gRPC port, for `google-cloud-speech`'s
SpeechClient: each call is converted to stt.v1 and served by the router's request path;
LongRunningRecognize becomes a job in the router's job store, whose operation the client polls
through google.longrunning.Operations on the same port."""

from __future__ import annotations

import grpc
from google.longrunning import operations_pb2

from services.core.calls import Call, CallScope
from services.core.rpc import generic_handler, stream_rpc, unary_rpc
from services.router.dropin import google_convert as convert
from services.router.dropin import google_jobs
from services.router.jobs.servicer import OperationsServicer
from services.router.path import RequestPath

SERVICE = "google.cloud.speech.v1.Speech"
API = "google"


class GoogleSpeech:
    api = API
    rpc_service = SERVICE
    request_id_of = None

    def __init__(self, calls: CallScope, path: RequestPath, operations: OperationsServicer):
        self.calls = calls
        self._path = path
        self._operations = operations

    def handler(self) -> grpc.GenericRpcHandler:
        return generic_handler(
            SERVICE,
            {
                "Recognize": (self.Recognize, convert.RecognizeRequest, convert.RecognizeResponse),
                "LongRunningRecognize": (
                    self.LongRunningRecognize,
                    google_jobs.LongRunningRecognizeRequest,
                    operations_pb2.Operation,
                ),
            },
            {
                "StreamingRecognize": (
                    self.StreamingRecognize,
                    convert.StreamingRecognizeRequest,
                    convert.StreamingRecognizeResponse,
                )
            },
        )

    @unary_rpc
    async def Recognize(self, call: Call, request):
        stt_request, backend = convert.recognize_request(request, self._path.backends)
        response = await self._path.recognize(call, stt_request, backend)
        return convert.recognize_response(response)

    @unary_rpc
    async def LongRunningRecognize(self, call: Call, request):
        job = google_jobs.long_running_request(request, self._path.backends)
        return await self._operations.accept(call, job)

    @stream_rpc
    async def StreamingRecognize(self, call: Call, requests):
        first, backend = convert.stream_setup(await anext(requests, None), self._path.backends)
        rest = (convert.stream_message(message) async for message in requests)
        async for response in self._path.stream(call, first, rest, backend):
            yield convert.streaming_response(response)
