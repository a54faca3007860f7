"""`nvidia.riva.asr.RivaSpeechRecognition` on the router's gRPC port, for `nvidia-riva-client`'s
ASRService: each call is converted to stt.v1 and served by the router's request path.

GetRivaSpeechRecognitionConfig lists one model per backend, by the router's name for it
(which `config.model` accepts to pin a request to it), with the languages it serves.
"""

from __future__ import annotations

import grpc
from riva.client.proto import riva_asr_pb2 as riva

from services.core.errors import InvalidConfig
from services.core.requests import REQUEST_ID_HEADER
from services.router import grpc_front
from services.router.dropin import riva_convert as convert
from services.router.info import backend_infos
from services.router.path import Incoming, RequestPath

SERVICE = riva.DESCRIPTOR.services_by_name["RivaSpeechRecognition"].full_name
API = "riva"


class RivaSpeech:
    def __init__(self, path: RequestPath):
        self._path = path

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc_front.generic_handler(
            SERVICE,
            {
                "Recognize": (self.Recognize, riva.RecognizeRequest, riva.RecognizeResponse),
                "GetRivaSpeechRecognitionConfig": (
                    self.GetRivaSpeechRecognitionConfig,
                    riva.RivaSpeechRecognitionConfigRequest,
                    riva.RivaSpeechRecognitionConfigResponse,
                ),
            },
            {
                "StreamingRecognize": (
                    self.StreamingRecognize,
                    riva.StreamingRecognizeRequest,
                    riva.StreamingRecognizeResponse,
                )
            },
        )

    async def Recognize(self, request, context):
        incoming = _incoming("Recognize", context, request.id.value)

        async def work(call):
            stt_request, backend = convert.recognize_request(request, self._path.backends)
            response = await self._path.recognize(call, stt_request, backend)
            return convert.recognize_response(response, call.request_id)

        return await grpc_front.unary(self._path, "Recognize", incoming, context, work)

    async def StreamingRecognize(self, request_iterator, context):
        requests = aiter(request_iterator)
        first = await anext(requests, None)  # read first: its id is the request's id
        incoming = _incoming("StreamingRecognize", context, first.id.value if first else "")

        async def relay(call):
            setup, backend = convert.stream_setup(first, self._path.backends)
            rest = (convert.stream_message(message) async for message in requests)
            async for response in self._path.stream(call, setup, rest, backend):
                answer = convert.streaming_response(response, call.request_id)
                if answer is not None:
                    yield answer

        async for response in grpc_front.streaming(
            self._path, "StreamingRecognize", incoming, context, relay
        ):
            yield response

    async def GetRivaSpeechRecognitionConfig(self, request, context):
        path = self._path
        routes = {
            name: [r.pattern for r in path.table.routes if name in r.backends]
            for name in path.backends
        }
        answer = riva.RivaSpeechRecognitionConfigResponse()
        for info in await backend_infos(path.pool, path.settings.info_timeout_s):
            if request.model_name in ("", info.backend_name):
                _describe(answer.model_config.add(), info, routes[info.backend_name])
        if not answer.model_config:
            served = ", ".join(path.backends)
            error = InvalidConfig(
                f"model_name {request.model_name!r} is not served; models: {served}"
            )
            await context.abort(error.code, error.message)
        return answer


def _describe(config, info, routes: list[str]) -> None:
    config.model_name = info.backend_name
    config.parameters.update(
        {
            "type": "offline,online" if info.streaming_supported else "offline",
            "language_code": ",".join(info.language_codes),
            "routes": ",".join(routes),
            "service": info.service,
            "model": info.model,
            "ready": "true" if info.ready else "false",
        }
    )


def _incoming(method: str, context, request_id: str) -> Incoming:
    """The call's Incoming; Riva's own request id, when the client set one, becomes ours."""
    incoming = Incoming.from_grpc(API, f"{SERVICE}/{method}", context)
    if not request_id:
        return incoming
    metadata = ((REQUEST_ID_HEADER, request_id), *incoming.metadata)
    return Incoming(incoming.api, incoming.span_name, metadata, incoming.remaining_s)
