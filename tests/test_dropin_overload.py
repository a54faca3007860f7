"""Overload through each drop-in API: a whisper_en with one inference slot and no queue behind
the router, several calls at once; the calls that find it full fail with the client's own
rate-limit or resource error, carrying a retry hint."""

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import openai
import pytest
import riva.client
from google.api_core import exceptions
from google.cloud import speech_v1
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport
from google.rpc import error_details_pb2

from services.router.settings import RouterSettings
from services.whisper_en.backend import WhisperBackend
from tests.conftest import whisper_settings
from tests.support import clip, running, running_router

CLIP = "en/mr_quilter_picovoice_leopard.wav"
PARALLEL = 4


@pytest.fixture(scope="module")
def router(whisper_model):
    settings = whisper_settings(whisper_model, max_concurrency=1, max_queue=0, cache_size=0)
    with running("whisper_en", settings, WhisperBackend(settings)) as whisper:
        assert whisper.wait_loaded(), "whisper_en failed to load"
        router_settings = RouterSettings(
            grpc_port=0,
            http_port=0,
            backends={"whisper_en": f"dns:///{whisper.target}"},
            routes="en=whisper_en",
            health_interval_s=0.2,
        )
        with running_router(router_settings) as server:
            yield server


def at_once(call) -> list:
    """`call()` from PARALLEL threads released together; each one's result or exception."""
    start = threading.Barrier(PARALLEL)

    def one():
        start.wait(10)
        try:
            return call()
        except Exception as error:
            return error

    with ThreadPoolExecutor(PARALLEL) as pool:
        return [f.result(120) for f in [pool.submit(one) for _ in range(PARALLEL)]]


def refusals(outcomes: list, kind: type) -> list:
    refused = [o for o in outcomes if isinstance(o, kind)]
    others = [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, kind)]
    assert not others, others
    assert refused, "no call was refused"
    assert len(refused) < PARALLEL, "every call was refused"
    return refused


def test_google_raises_resource_exhausted_with_retry_info(router, audio_dir):
    channel = grpc.insecure_channel(router.target)
    client = speech_v1.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    config = speech_v1.RecognitionConfig(language_code="en-US")
    audio = speech_v1.RecognitionAudio(content=clip(CLIP))
    outcomes = at_once(lambda: client.recognize(config=config, audio=audio, timeout=60))
    channel.close()
    for error in refusals(outcomes, exceptions.ResourceExhausted):
        hints = [d for d in error.details if isinstance(d, error_details_pb2.RetryInfo)]
        assert hints and hints[0].retry_delay.ToMilliseconds() > 0


def test_riva_raises_resource_exhausted_with_a_pushback(router, audio_dir):
    auth = riva.client.Auth(uri=router.target)
    asr = riva.client.ASRService(auth)
    config = riva.client.RecognitionConfig(language_code="en-US")
    outcomes = at_once(lambda: asr.offline_recognize(clip(CLIP), config))
    auth.channel.close()
    for error in refusals(outcomes, grpc.RpcError):
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(error.trailing_metadata())
        assert int(trailers["grpc-retry-pushback-ms"]) > 0


def test_openai_raises_rate_limit_with_retry_after(router, audio_dir):
    with openai.OpenAI(base_url=f"{router.http}/v1", api_key="unused", max_retries=0) as client:
        outcomes = at_once(
            lambda: client.audio.transcriptions.create(
                file=("quilter.wav", clip(CLIP)), model="whisper-1", language="en"
            )
        )
    for error in refusals(outcomes, openai.RateLimitError):
        assert error.status_code == 429 and error.code == "rate_limit_exceeded"
        assert int(error.response.headers["retry-after"]) >= 1
        assert int(error.response.headers["retry-after-ms"]) > 0
