"""`google.cloud.speech.v1.Speech` and `google.cloud.speech.v1p1beta1.Speech` on the router's
gRPC port, for `google-cloud-speech`'s SpeechClient of either version: each call is converted
to stt.v1 and served by the router's request path; LongRunningRecognize becomes a job in the
router's job store, whose operation the client polls through google.longrunning.Operations on
the same port. A beta call is read as v1's (see `google_beta.py`) and answered in beta types.

Recognize's trailing metadata names the service and model that served it (`x-stt-service`,
`x-stt-model`): Google's messages have no field for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.longrunning import operations_pb2

from services.core.calls import Call, CallScope
from services.core.rpc import generic_handler, stream_rpc, unary_rpc
from services.router.dropin import google_beta, google_jobs
from services.router.dropin import google_convert as convert
from services.router.jobs.servicer import OperationsServicer
from services.router.path import RequestPath

SERVICE = "google.cloud.speech.v1.Speech"
API = "google"


@dataclass(frozen=True)
class Version:
    """One version of the API: its service, its metrics label, its messages, and how they
    are read as v1's (`to_v1(message, v1_type)`) and written from v1's (`from_v1`)."""

    service: str
    api: str
    recognize: tuple[Any, Any]  # request, response
    long_running: Any  # request
    streaming: tuple[Any, Any]
    to_v1: Callable[[Any, Any], Any]
    from_v1: Callable[[Any, Any], Any]


def _same(message, _type):
    return message


V1 = Version(
    SERVICE,
    API,
    (convert.RecognizeRequest, convert.RecognizeResponse),
    google_jobs.LongRunningRecognizeRequest,
    (convert.StreamingRecognizeRequest, convert.StreamingRecognizeResponse),
    _same,
    _same,
)
V1P1BETA1 = Version(
    google_beta.SERVICE,
    google_beta.API,
    (google_beta.RecognizeRequest, google_beta.RecognizeResponse),
    google_beta.LongRunningRecognizeRequest,
    (google_beta.StreamingRecognizeRequest, google_beta.StreamingRecognizeResponse),
    google_beta.to_v1,
    google_beta.from_v1,
)
VERSIONS = (V1, V1P1BETA1)


class GoogleSpeech:
    request_id_of = None

    def __init__(
        self,
        calls: CallScope,
        path: RequestPath,
        operations: OperationsServicer,
        version: Version = V1,
    ):
        self.calls = calls
        self.api = version.api
        self.rpc_service = version.service
        self._path = path
        self._operations = operations
        self._version = version

    def handler(self) -> grpc.GenericRpcHandler:
        version = self._version
        return generic_handler(
            version.service,
            {
                "Recognize": (self.Recognize, *version.recognize),
                "LongRunningRecognize": (
                    self.LongRunningRecognize,
                    version.long_running,
                    operations_pb2.Operation,
                ),
            },
            {"StreamingRecognize": (self.StreamingRecognize, *version.streaming)},
        )

    @unary_rpc
    async def Recognize(self, call: Call, request):
        request = self._version.to_v1(request, convert.RecognizeRequest)
        stt_request, backend = convert.recognize_request(request, self._path.backends)
        response = await self._path.recognize(call, stt_request, backend)
        return self._version.from_v1(
            convert.recognize_response(response), self._version.recognize[1]
        )

    @unary_rpc
    async def LongRunningRecognize(self, call: Call, request):
        request = self._version.to_v1(request, google_jobs.LongRunningRecognizeRequest)
        job = google_jobs.long_running_request(request, self._path.backends)
        return await self._operations.accept(call, job)

    @stream_rpc
    async def StreamingRecognize(self, call: Call, requests):
        to_v1, from_v1 = self._version.to_v1, self._version.from_v1
        v1_request, answer = convert.StreamingRecognizeRequest, self._version.streaming[1]
        first = await anext(requests, None)
        first = to_v1(first, v1_request) if first is not None else None
        setup, backend = convert.stream_setup(first, self._path.backends)
        rest = (convert.stream_message(to_v1(m, v1_request)) async for m in requests)
        async for response in self._path.stream(call, setup, rest, backend):
            yield from_v1(convert.streaming_response(response), answer)
