"""Failover through the router on loopback: two whisper_en replicas with one inference slot
and no queue each, named whisper_a and whisper_b so a response's `service` says which one
answered.

`chain` routes English to whisper_a, then whisper_b (two backends). `pair` puts both replicas
behind one target, `ipv4:127.0.0.1:A,127.0.0.1:B`: the same list of addresses a `dns:///`
name of a headless Service resolves to, balanced with round_robin. The last test stops
whisper_a, so it comes last.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.router.settings import RouterSettings
from services.whisper_en.backend import WhisperBackend
from tests.conftest import whisper_settings
from tests.support import clip, request, running, running_router
from tests.test_backpressure import wait_until_idle
from tests.test_whisper_en import metric

JFK = "en/jfk.flac"  # about 2 s of inference here: long enough to keep a slot busy
SHORT = "en/platforms_one_and_three_picovoice_cheetah.wav"
PARALLEL_CALLS = 6


def single_slot(name: str, model):
    settings = whisper_settings(model, max_concurrency=1, max_queue=0, cache_size=0)
    return running(name, settings, WhisperBackend(settings))


@pytest.fixture(scope="module")
def replicas(whisper_model):
    with single_slot("whisper_a", whisper_model) as a, single_slot("whisper_b", whisper_model) as b:
        assert a.wait_loaded() and b.wait_loaded()
        yield a, b


def router_for(backends: dict[str, str], routes: str):
    settings = RouterSettings(
        grpc_port=0, http_port=0, backends=backends, routes=routes, health_interval_s=0.2
    )
    return running_router(settings)


@pytest.fixture(scope="module")
def chain(replicas):
    a, b = replicas
    backends = {"whisper_a": f"dns:///{a.target}", "whisper_b": f"dns:///{b.target}"}
    with router_for(backends, "en=whisper_a,whisper_b") as router:
        yield router


@pytest.fixture(scope="module")
def pair(replicas):
    a, b = replicas
    target = f"ipv4:{a.target},{b.target}"
    with router_for({"whisper_en": target}, "en=whisper_en") as router:
        yield router


def recognize(router, path: str, timeout: float = 120):
    """('ok', service) or (status code, the error)."""
    try:
        response = router.stub.Recognize(request(clip(path), language_code="en"), timeout=timeout)
        return "ok", response.service
    except grpc.RpcError as error:
        return error.code(), error


def test_full_backends_fail_over_then_refuse_with_a_retry_hint(chain, replicas, audio_dir):
    with ThreadPoolExecutor(PARALLEL_CALLS) as pool:
        outcomes = list(pool.map(lambda _: recognize(chain, JFK), range(PARALLEL_CALLS)))
    served = {service for kind, service in outcomes if kind == "ok"}
    refused = [error for kind, error in outcomes if kind != "ok"]
    assert served == {"whisper_a", "whisper_b"}, outcomes  # the second went on to whisper_b
    assert refused, outcomes
    for error in refused:
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "every backend for 'en' is at capacity" in error.details()
        assert int(dict(error.trailing_metadata())["grpc-retry-pushback-ms"]) > 0
        retry = error_details_pb2.RetryInfo()
        assert any(d.Unpack(retry) for d in rpc_status.from_call(error).details)
    assert metric(chain, "stt_router_failovers_total", backend="whisper_a") >= 1
    assert metric(chain, "stt_router_attempts_total", backend="whisper_b", code="OK") >= 1
    assert metric(chain, "stt_router_rejections_total", reason="overloaded") == len(refused)
    for replica in replicas:
        wait_until_idle(replica, 60)


def test_a_cancelled_call_frees_the_backend_slot(chain, replicas, audio_dir):
    a, _ = replicas
    cancelled = metric(a, "stt_requests_total", code="CANCELLED")
    call = chain.stub.Recognize.future(request(clip("en/long_concat_en.flac"), language_code="en"))
    started = time.monotonic()
    while metric(a, "stt_inflight_requests") < 1:
        assert time.monotonic() - started < 30, "the call never reached whisper_a"
        time.sleep(0.05)
    call.cancel()
    wait_until_idle(a, 20)  # whisper_a stopped at its next check: the router passed the cancel on
    assert metric(a, "stt_requests_total", code="CANCELLED") == cancelled + 1


def test_a_client_deadline_stops_the_backend(chain, replicas, audio_dir):
    a, _ = replicas
    outcome, error = recognize(chain, "en/long_concat_en.flac", timeout=2)
    assert outcome is grpc.StatusCode.DEADLINE_EXCEEDED, error
    wait_until_idle(a, 20)


def test_both_replicas_behind_one_target_take_traffic(pair, replicas, audio_dir):
    outcomes = []
    while len(outcomes) < 8 and {s for _, s in outcomes} != {"whisper_a", "whisper_b"}:
        outcomes.append(recognize(pair, SHORT))
    assert {service for _, service in outcomes} == {"whisper_a", "whisper_b"}, outcomes


def test_killing_a_replica_mid_run_loses_no_later_call(pair, replicas, audio_dir):
    a, _ = replicas
    outcomes: list[tuple[float, str, str]] = []

    def run_calls():
        for _ in range(8):
            started = time.monotonic()
            kind, service = recognize(pair, SHORT, timeout=60)
            outcomes.append((started, str(kind), service))

    caller = threading.Thread(target=run_calls)
    caller.start()
    while len(outcomes) < 2:
        assert caller.is_alive(), outcomes
        time.sleep(0.05)
    a.stop()  # in-flight calls on whisper_a are cut off with UNAVAILABLE
    killed_at = time.monotonic()
    caller.join(8 * 60)
    assert not caller.is_alive(), "a call hung"
    later = [(kind, service) for started, kind, service in outcomes if started > killed_at]
    assert later and all(outcome == ("ok", "whisper_b") for outcome in later), outcomes
    # A call cut off on whisper_a is sent again, to whisper_b; at worst it is UNAVAILABLE.
    assert {kind for _, kind, _ in outcomes} <= {"ok", "StatusCode.UNAVAILABLE"}, outcomes
