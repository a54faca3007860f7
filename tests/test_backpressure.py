"""Overload, deadlines and cancellation: answers come fast, slots come back, nothing hangs."""

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.whisper_en.backend import WhisperBackend
from tests.conftest import whisper_settings
from tests.support import clip, metric, request, running, transcript

PARALLEL_CALLS = 8


@pytest.fixture(scope="module")
def single_slot_server(whisper_model):
    # Batches of one: a request that gives up stops at the end of the piece it decodes, so
    # the slot frees well before the whole clip would end. A request leaving a batch of
    # others is tested in test_whisper_batching.
    settings = whisper_settings(
        whisper_model, max_concurrency=1, max_queue=0, cache_size=0, max_batch_size=1
    )
    with running("whisper_en", settings, WhisperBackend(settings)) as server:
        assert server.wait_loaded()
        yield server


def wait_until_idle(server, within_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if metric(server, "stt_inflight_requests") == 0:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"the inference slot was not freed within {within_s} s")


def wait_until_busy(server, within_s: float) -> None:
    started = time.monotonic()
    while metric(server, "stt_inflight_requests") < 1:
        assert time.monotonic() - started < within_s, "the request never started"
        time.sleep(0.02)


def test_overload_refuses_fast_with_a_retry_hint(single_slot_server, audio_dir):
    content = clip("en/jfk.flac")

    def call(_):
        started = time.perf_counter()
        try:
            response = single_slot_server.stub.Recognize(
                request(content, language_code="en"), timeout=120
            )
            return "ok", transcript(response), time.perf_counter() - started
        except grpc.RpcError as error:
            return error, None, time.perf_counter() - started

    with ThreadPoolExecutor(PARALLEL_CALLS) as pool:
        outcomes = list(pool.map(call, range(PARALLEL_CALLS), timeout=180))
    served = [text for kind, text, _ in outcomes if kind == "ok"]
    refused = [(error, took) for error, _, took in outcomes if error != "ok"]
    assert served and refused, outcomes
    assert all(text.startswith("And so my fellow Americans") for text in served)
    for error, took in refused:
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert took < 1.0  # refused at once, not after waiting for the busy slot
        trailers = dict(error.trailing_metadata())
        assert int(trailers["grpc-retry-pushback-ms"]) > 0
        retry = error_details_pb2.RetryInfo()
        assert any(d.Unpack(retry) for d in rpc_status.from_call(error).details)
        assert retry.retry_delay.ToMilliseconds() > 0
    rejected = metric(single_slot_server, "stt_rejections_total", reason="overloaded")
    assert rejected >= len(refused)
    wait_until_idle(single_slot_server, 30)
    after = single_slot_server.stub.Recognize(request(content, language_code="en"), timeout=60)
    assert transcript(after).startswith("And so my fellow Americans")


def test_deadline_frees_the_slot(single_slot_server, audio_dir):
    long_clip = clip("en/long_concat_en.flac")  # about 20 s of work on a 2-core CPU
    with pytest.raises(grpc.RpcError) as expired:
        single_slot_server.stub.Recognize(request(long_clip, language_code="en"), timeout=1.5)
    assert expired.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    # The worker stops at its next check (one piece of at most 30 s of audio), not at the end.
    wait_until_idle(single_slot_server, 12)
    short = clip("en/platforms_one_and_three_picovoice_cheetah.wav")
    assert (
        "platforms"
        in transcript(
            single_slot_server.stub.Recognize(request(short, language_code="en"), timeout=60)
        ).lower()
    )


def test_cancel_frees_the_slot(single_slot_server, audio_dir):
    long_clip = clip("en/long_concat_en.flac")
    call = single_slot_server.stub.Recognize.future(request(long_clip, language_code="en"))
    wait_until_busy(single_slot_server, 10)
    call.cancel()
    wait_until_idle(single_slot_server, 12)
    cancelled = metric(single_slot_server, "stt_requests_total", code="CANCELLED")
    assert cancelled >= 1
