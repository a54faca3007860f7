"""`nvidia.riva.asr.RivaSpeechRecognition` on the router's gRPC port, for `nvidia-riva-client`'s
ASRService: each call is converted to stt.v1 and served by the router's request path.

GetRivaSpeechRecognitionConfig lists each backend by the router's name for it (which
`config.model` accepts to pin a request to it) as Riva lists a model: an `offline` entry, and
an `online` one when it streams, with the languages it serves, so that Riva's scripts'
`--list-models` find them (see `riva_models.py`).
"""

from __future__ import annotations

import grpc
from riva.client.proto import riva_asr_pb2 as riva

from services.core.calls import Call, CallScope
from services.core.errors import InvalidConfig
from services.core.rpc import generic_handler, stream_rpc, unary_rpc
from services.router.dropin import riva_convert as convert
from services.router.dropin import riva_models
from services.router.path import RequestPath

SERVICE = riva.DESCRIPTOR.services_by_name["RivaSpeechRecognition"].full_name
API = "riva"


class RivaSpeech:
    api = API
    rpc_service = SERVICE

    def __init__(self, calls: CallScope, path: RequestPath):
        self.calls = calls
        self._path = path

    @staticmethod
    def request_id_of(message) -> str:
        """Riva's own request id, when the client set one, becomes the call's (the config
        query has none)."""
        sent = getattr(message, "id", None)
        return "" if sent is None else sent.value

    def handler(self) -> grpc.GenericRpcHandler:
        return generic_handler(
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

    @unary_rpc
    async def Recognize(self, call: Call, request):
        stt_request, backend = convert.recognize_request(request, self._path.backends)
        response = await self._path.recognize(call, stt_request, backend)
        return convert.recognize_response(response, call.request_id)

    @stream_rpc
    async def StreamingRecognize(self, call: Call, requests):
        setup, backend = convert.stream_setup(await anext(requests, None), self._path.backends)
        rest = (convert.stream_message(message) async for message in requests)
        async for response in self._path.stream(call, setup, rest, backend):
            answer = convert.streaming_response(response, call.request_id)
            if answer is not None:
                yield answer

    @unary_rpc(needs_ready=False)  # it describes the models, whatever their state
    async def GetRivaSpeechRecognitionConfig(self, call: Call, request):
        call.language = "none"
        described = await self._path.describe()
        routes = {
            name: [r.pattern for r in described.routes if name in r.backends]
            for name in self._path.backends
        }
        answer = riva.RivaSpeechRecognitionConfigResponse()
        for info in described.backends:
            if info.backend_name in routes and request.model_name in ("", info.backend_name):
                answer.model_config.extend(_entries(info, routes[info.backend_name]))
        if not answer.model_config:
            served = ", ".join(self._path.backends)
            name = request.model_name
            raise InvalidConfig(f"model_name {name!r} is not served; models: {served}")
        return answer


def _entries(info, routes: list[str]) -> list:
    """A backend's entries; one that does not answer is listed by its routes, offline."""
    extra = {
        "routes": ",".join(routes),
        "service": info.service,
        "model": info.model,
        "ready": "true" if info.ready else "false",
    }
    return riva_models.model_configs(
        info.backend_name,
        list(info.language_codes) or routes,
        info.streaming_supported,
        info.service or info.backend_name,
        extra=extra,
    )
