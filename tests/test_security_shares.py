"""Fair shares and idle streams, with a real whisper_en of two inference slots behind a router
on 127.0.0.1: a tenant that floods the router past its share (ROUTER_TENANT_MAX_IN_FLIGHT) is
refused RESOURCE_EXHAUSTED with a QuotaFailure naming it and a RetryInfo, while another
tenant's every request is served; a stream that sends its config and then nothing ends with
OUT_OF_RANGE after stream_audio_timeout_s, on the router and on the service, and frees what it
held."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stt.v1 import stt_pb2, stt_pb2_grpc

from services.router.settings import RouterSettings
from services.whisper_en.backend import WhisperBackend
from tests.conftest import whisper_settings
from tests.support import espeak, metric, request, running, running_router, transcript
from tests.test_streaming import stream_config

SHARE = 2
FLOOD = 16
IDLE_S = 1.0


@pytest.fixture(scope="module")
def speech() -> bytes:
    return espeak("the quick brown fox jumps over the lazy dog")


@pytest.fixture(scope="module")
def two_slots(whisper_model):
    """whisper_en with two inference slots (and room to queue), streams idle for 1 s ended."""
    settings = whisper_settings(
        whisper_model, max_concurrency=2, max_queue=8, stream_audio_timeout_s=IDLE_S
    )
    with running("whisper_en", settings, WhisperBackend(settings)) as server:
        assert server.wait_loaded(), "whisper_en failed to load"
        yield server


@pytest.fixture(scope="module")
def router(two_slots):
    settings = RouterSettings(
        grpc_port=0,
        http_port=0,
        backends={"whisper_en": f"dns:///{two_slots.target}"},
        routes="en*=whisper_en",
        health_interval_s=0.2,
        tenant_max_in_flight=SHARE,
        stream_audio_timeout_s=IDLE_S,
    )
    with running_router(settings) as router:
        yield router


def tenant(name: str) -> tuple[tuple[str, str], ...]:
    return (("x-tenant-id", name),)


def recognize(router, speech: bytes, who: str):
    """The response, or the RpcError that refused it."""
    try:
        return router.stub.Recognize(
            request(speech, language_code="en"), metadata=tenant(who), timeout=120
        )
    except grpc.RpcError as error:
        return error


def test_a_flooding_tenant_is_held_to_its_share_while_another_is_served(router, speech):
    answered, done = [], threading.Event()

    def flood():
        with ThreadPoolExecutor(FLOOD) as pool:
            while not done.is_set():
                calls = [pool.submit(recognize, router, speech, "team-a") for _ in range(FLOOD)]
                answered.extend(call.result() for call in calls)

    flooding = threading.Thread(target=flood)
    flooding.start()
    try:
        time.sleep(0.5)  # the flood is under way
        served = [recognize(router, speech, "team-b") for _ in range(4)]
    finally:
        done.set()
        flooding.join(300)
    for response in served:
        assert isinstance(response, stt_pb2.RecognizeResponse), response
        assert "quick brown fox" in transcript(response).lower()
    refused = [a for a in answered if isinstance(a, grpc.RpcError)]
    ok = [a for a in answered if isinstance(a, stt_pb2.RecognizeResponse)]
    assert len(answered) >= FLOOD and ok and len(refused) >= FLOOD - SHARE
    for error in refused:
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, error
        assert "tenant 'team-a' has 2 calls in flight" in error.details()
        details = rpc_status.from_call(error).details
        failure, retry = error_details_pb2.QuotaFailure(), error_details_pb2.RetryInfo()
        assert any(d.Unpack(failure) for d in details)
        assert failure.violations[0].subject == "tenant:team-a"
        assert any(d.Unpack(retry) for d in details)
        assert retry.retry_delay.ToMilliseconds() > 0
        assert dict(error.trailing_metadata())["grpc-retry-pushback-ms"] == "1000"
    rejected = metric(router, "stt_router_rejections_total", reason="tenant_share_exceeded")
    assert rejected == len(refused)


class IdleStream:
    """A stream that sends its config, then nothing until `release`."""

    def __init__(self, stub, who: str):
        self._release = threading.Event()
        self.started = time.monotonic()
        self._responses = stub.StreamingRecognize(
            self._messages(), metadata=tenant(who), timeout=60
        )

    def _messages(self):
        yield stt_pb2.StreamingRecognizeRequest(streaming_config=stream_config())
        self._release.wait(30)

    def outcome(self) -> tuple[grpc.RpcError, float]:
        with pytest.raises(grpc.RpcError) as ended:
            list(self._responses)
        self._release.set()
        return ended.value, time.monotonic() - self.started


def test_an_idle_stream_ends_out_of_range_on_the_router_and_frees_its_place(router, speech):
    streams = [IdleStream(router.stub, "team-c") for _ in range(SHARE)]
    time.sleep(0.3)
    held = recognize(router, speech, "team-c")  # the two streams hold the tenant's share
    assert isinstance(held, grpc.RpcError) and held.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    for stream in streams:
        error, took = stream.outcome()
        assert error.code() is grpc.StatusCode.OUT_OF_RANGE, error
        assert error.details() == "no audio for 1 s"
        assert IDLE_S <= took < IDLE_S + 5
    served = recognize(router, speech, "team-c")  # the share is free again
    assert isinstance(served, stt_pb2.RecognizeResponse), served


def test_an_idle_stream_ends_out_of_range_on_the_service(two_slots):
    stub = stt_pb2_grpc.SpeechStub(two_slots.channel)
    stream = IdleStream(stub, "anyone")
    error, took = stream.outcome()
    assert error.code() is grpc.StatusCode.OUT_OF_RANGE and error.details() == "no audio for 1 s"
    assert IDLE_S <= took < IDLE_S + 5
    assert metric(two_slots, "stt_active_streams") == 0
