"""`google.cloud.speech.v1.Speech` on the router's gRPC port, for `google-cloud-speech`'s
SpeechClient: each call is converted to stt.v1 and served by the router's request path;
LongRunningRecognize becomes a job in the router's job store, whose operation the client polls
through google.longrunning.Operations on the same port."""

from __future__ import annotations

import grpc
from google.longrunning import operations_pb2

from services.jobs.service import OperationsServicer
from services.router import grpc_front
from services.router.dropin import google_convert as convert
from services.router.dropin import google_jobs
from services.router.path import Incoming, RequestPath

SERVICE = "google.cloud.speech.v1.Speech"
API = "google"


class GoogleSpeech:
    def __init__(self, path: RequestPath, operations: OperationsServicer):
        self._path = path
        self._operations = operations

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc_front.generic_handler(
            SERVICE,
            {
                "Recognize": (
                    self.Recognize,
                    convert.RecognizeRequest,
                    convert.RecognizeResponse,
                ),
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

    async def Recognize(self, request, context):
        async def work(call):
            stt_request, backend = convert.recognize_request(request, self._path.backends)
            response = await self._path.recognize(call, stt_request, backend)
            return convert.recognize_response(response)

        return await self._unary("Recognize", context, work)

    async def LongRunningRecognize(self, request, context):
        incoming = Incoming.from_grpc(API, f"{SERVICE}/LongRunningRecognize", context)

        async def work(call):
            job = google_jobs.long_running_request(request, self._path.backends)
            return await self._operations.accept(call, job, incoming.metadata, API)

        return await grpc_front.unary(self._path, "LongRunningRecognize", incoming, context, work)

    async def StreamingRecognize(self, request_iterator, context):
        incoming = Incoming.from_grpc(API, f"{SERVICE}/StreamingRecognize", context)

        async def relay(call):
            requests = aiter(request_iterator)
            first, backend = convert.stream_setup(await anext(requests, None), self._path.backends)
            rest = (convert.stream_message(message) async for message in requests)
            async for response in self._path.stream(call, first, rest, backend):
                yield convert.streaming_response(response)

        async for response in grpc_front.streaming(
            self._path, "StreamingRecognize", incoming, context, relay
        ):
            yield response

    async def _unary(self, method: str, context, work):
        incoming = Incoming.from_grpc(API, f"{SERVICE}/{method}", context)
        return await grpc_front.unary(self._path, method, incoming, context, work)
