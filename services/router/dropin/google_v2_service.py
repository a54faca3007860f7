"""`google.cloud.speech.v2.Speech` on the router's gRPC port, for `google-cloud-speech`'s
`speech_v2.SpeechClient`: Recognize and StreamingRecognize with an inline config on the `_`
recognizer, converted to stt.v1 (see `google_v2.py`) and served by the router's request path.
The recognizer, phrase-set and custom-class methods manage resources stored at Google, which
this API does not keep: they are not served."""

from __future__ import annotations

import grpc

from services.core.calls import Call, CallScope
from services.core.rpc import generic_handler, stream_rpc, unary_rpc
from services.router.dropin import google_v2 as convert
from services.router.dropin import google_v2_responses as answers
from services.router.path import RequestPath


class GoogleSpeechV2:
    api = convert.API
    rpc_service = convert.SERVICE
    request_id_of = None

    def __init__(self, calls: CallScope, path: RequestPath):
        self.calls = calls
        self._path = path

    def handler(self) -> grpc.GenericRpcHandler:
        return generic_handler(
            convert.SERVICE,
            {"Recognize": (self.Recognize, convert.RecognizeRequest, answers.RecognizeResponse)},
            {
                "StreamingRecognize": (
                    self.StreamingRecognize,
                    convert.StreamingRecognizeRequest,
                    answers.StreamingRecognizeResponse,
                )
            },
        )

    @unary_rpc
    async def Recognize(self, call: Call, request):
        stt_request, backend = convert.recognize_request(request, self._path.backends)
        response = await self._path.recognize(call, stt_request, backend)
        return answers.recognize_response(response)

    @stream_rpc
    async def StreamingRecognize(self, call: Call, requests):
        first, backend = convert.stream_setup(await anext(requests, None), self._path.backends)
        rest = (convert.stream_message(message) async for message in requests)
        async for response in self._path.stream(call, first, rest, backend):
            yield answers.streaming_response(response)
