"""Each drop-in API can be switched off in the router's settings; the rest keeps serving."""

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import speech_v1
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport
from riva.client.proto import riva_asr_pb2, riva_asr_pb2_grpc

from services.router.settings import RouterSettings
from tests.support import http_get, running_router
from tests.test_router import unused_port


def test_each_api_can_be_switched_off():
    settings = RouterSettings(
        grpc_port=0,
        http_port=0,
        backends={"whisper_en": f"127.0.0.1:{unused_port()}"},
        routes="en=whisper_en",
        google_speech_api=False,
        riva_asr_api=False,
        openai_audio_api=False,
    )
    with running_router(settings) as router:
        channel = grpc.insecure_channel(router.target)
        google = speech_v1.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
        with pytest.raises(exceptions.MethodNotImplemented):
            google.recognize(
                config=speech_v1.RecognitionConfig(language_code="en"),
                audio=speech_v1.RecognitionAudio(content=b"\0" * 3200),
                timeout=10,
            )
        riva = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            riva.GetRivaSpeechRecognitionConfig(
                riva_asr_pb2.RivaSpeechRecognitionConfigRequest(), timeout=10
            )
        assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED
        channel.close()
        assert http_get(router, "/v1/models") == (404, "not found\n")
        assert http_get(router, "/healthz") == (200, "serving\n")
