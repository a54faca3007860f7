"""The router in front of real services on loopback: routing by language, detection, refusals,
request ids and traces, streaming, aggregated info, health and metrics.

Two warm Whisper servers stand for two language services: whisper_en, and whisper_ar (the
same model serving Arabic only), so a response's `service` shows where the router sent it.
A third backend, `hausa_stt`, points at a port where nothing listens.
"""

import socket

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from stt.v1 import stt_pb2

from services.router.settings import RouterSettings
from services.whisper_en.backend import WhisperBackend
from tests.conftest import SPANS, whisper_settings
from tests.support import clip, encode, request, running, running_router, tone, transcript
from tests.test_whisper_en import http_get, metric

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
ARABIC = "ar/keywords_hummus_coffee_octopus_toaster.wav"
QUILTER = "en/mr_quilter_picovoice_leopard.wav"


@pytest.fixture(scope="module")
def whisper_ar(whisper_model):
    settings = whisper_settings(whisper_model, languages=["ar"])
    with running("whisper_ar", settings, WhisperBackend(settings)) as server:
        assert server.wait_loaded(), "whisper_ar failed to load"
        yield server


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


ROUTES = "en*=whisper_en;ar=whisper_ar,whisper_en;ha=hausa_stt"


def router_settings(routes: str, **backends) -> RouterSettings:
    return RouterSettings(
        grpc_port=0,
        http_port=0,
        backends={name: f"dns:///{target}" for name, target in backends.items()},
        routes=routes,
        health_interval_s=0.2,
    )


@pytest.fixture(scope="module")
def router(whisper_server, whisper_ar):
    settings = router_settings(
        ROUTES,
        whisper_en=whisper_server.target,
        whisper_ar=whisper_ar.target,
        hausa_stt=f"127.0.0.1:{unused_port()}",
    )
    with running_router(settings) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "code", "service"),
    [
        (QUILTER, "en-US", "whisper_en"),
        (QUILTER, "EN_gb", "whisper_en"),
        (ARABIC, "ar-EG", "whisper_ar"),
    ],
)
def test_routes_by_language_prefix(router, audio_dir, path, code, service):
    response = router.stub.Recognize(request(clip(path), language_code=code), timeout=60)
    assert response.service == service
    assert response.language_code == code.split("-")[0].split("_")[0].lower()
    assert transcript(response)


@pytest.mark.parametrize(("path", "language", "service"), [(ARABIC, "ar", "whisper_ar")])
def test_detects_the_language_then_routes(router, audio_dir, path, language, service):
    before = metric(router, "stt_router_detections_total", language=language)
    response = router.stub.Recognize(request(clip(path)), timeout=60)
    assert (response.language_code, response.service) == (language, service)
    assert response.language_probability > 0.5
    assert metric(router, "stt_router_detections_total", language=language) == before + 1


def test_detect_language_through_the_router(router, audio_dir):
    reply = router.stub.DetectLanguage(
        stt_pb2.DetectLanguageRequest(audio=stt_pb2.RecognitionAudio(content=clip(QUILTER))),
        timeout=60,
    )
    assert reply.language_code == "en" and reply.service == "whisper_en"
    assert reply.language_probability > 0.5


def test_detect_language_answers_among_the_languages_served(whisper_server, whisper_ar, audio_dir):
    english = stt_pb2.DetectLanguageRequest(audio=stt_pb2.RecognitionAudio(content=clip(QUILTER)))
    assert whisper_ar.stub.DetectLanguage(english, timeout=60).language_code == "ar"
    silence = encode(tone(2.0), 16000, "wav", "pcm_s16le")  # a tone: no speech in it
    no_speech = stt_pb2.DetectLanguageRequest(audio=stt_pb2.RecognitionAudio(content=silence))
    reply = whisper_server.stub.DetectLanguage(no_speech, timeout=60)
    assert (reply.language_code, reply.language_probability) == ("", 0.0)


def test_audio_without_speech_and_language_goes_to_the_detector(router):
    silence = encode(tone(2.0), 16000, "wav", "pcm_s16le")
    response = router.stub.Recognize(request(silence), timeout=60)
    assert response.service == "whisper_en" and not response.results


def test_unknown_language_is_invalid_argument_naming_the_languages(router, whisper_server):
    backend_before = metric(whisper_server, "stt_requests_total")
    with pytest.raises(grpc.RpcError) as refused:
        router.stub.Recognize(request(clip(QUILTER), language_code="fr-FR"), timeout=10)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "it serves: ar, en, ha" in refused.value.details()
    assert metric(router, "stt_router_rejections_total", reason="unsupported_language") >= 1
    assert metric(whisper_server, "stt_requests_total") == backend_before


def test_a_backends_invalid_argument_is_relayed_once(router, whisper_server):
    def backend_refusals():
        return metric(whisper_server, "stt_requests_total", code="INVALID_ARGUMENT")

    before = backend_refusals()
    with pytest.raises(grpc.RpcError) as refused:
        router.stub.Recognize(request(b"not audio" * 50, language_code="en"), timeout=10)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be decoded" in refused.value.details()
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in rpc_status.from_call(refused.value).details)
    assert info.reason == "INVALID_AUDIO"
    assert backend_refusals() == before + 1  # never retried


def test_a_language_whose_backends_are_down_is_unavailable(router, audio_dir):
    with pytest.raises(grpc.RpcError) as refused:
        router.stub.Recognize(request(clip(QUILTER), language_code="ha"), timeout=10)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "hausa_stt" in refused.value.details()


def test_request_id_trace_and_deadline_reach_the_backend(router, audio_dir):
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    SPANS.clear()
    response, call = router.stub.Recognize.with_call(
        request(clip(QUILTER), language_code="en"),
        timeout=45,
        metadata=(
            ("x-request-id", "router-test-1"),
            ("traceparent", f"00-{trace_id}-b7ad6b7169203331-01"),
        ),
    )
    assert response.request_id == "router-test-1"
    assert ("x-request-id", "router-test-1") in call.trailing_metadata()
    spans = [s for s in SPANS.get_finished_spans() if s.context.trace_id == int(trace_id, 16)]
    servers = {s.attributes["stt.service"]: s for s in spans if s.name.startswith("stt.v1")}
    router_span, backend_span = servers["router"], servers["whisper_en"]
    assert router_span.parent.span_id == 0xB7AD6B7169203331
    assert backend_span.parent.span_id == router_span.context.span_id
    assert backend_span.attributes["stt.request_id"] == "router-test-1"
    # Both hops saw the client's deadline (gRPC rounds it up to its wire units).
    for span in (router_span, backend_span):
        assert 0 < span.attributes["stt.deadline_s"] <= 46


def test_the_router_makes_a_request_id_when_none_is_sent(router, audio_dir):
    response, call = router.stub.Recognize.with_call(
        request(clip(QUILTER), language_code="en"), timeout=45
    )
    assert len(response.request_id) == 32
    assert ("x-request-id", response.request_id) in call.trailing_metadata()


def test_streaming_through_the_router(router, audio_dir):
    from tests.test_streaming import finals, messages, pcm16, stream_config

    audio = pcm16("en/jfk.flac")
    responses = list(router.stub.StreamingRecognize(messages(stream_config(), audio), timeout=300))
    heard = " ".join(r.alternatives[0].transcript for r in finals(responses)).lower()
    assert "fellow americans" in heard and "your country" in heard
    garbage = messages(
        stream_config(config={"encoding": 0, "sample_rate_hertz": 0}), b"\x13" * 9000
    )
    with pytest.raises(grpc.RpcError) as refused:
        list(router.stub.StreamingRecognize(garbage, timeout=60))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be decoded" in refused.value.details()  # the backend's own message
    audio_first = iter([stt_pb2.StreamingRecognizeRequest(audio_content=b"\x00\x00")])
    with pytest.raises(grpc.RpcError) as bad:
        list(router.stub.StreamingRecognize(audio_first, timeout=10))
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_service_info_aggregates_every_backend(router):
    info = router.stub.GetServiceInfo(stt_pb2.GetServiceInfoRequest(), timeout=10)
    assert info.service == "router" and list(info.language_codes) == ["ar", "en", "ha"]
    assert not info.ready  # hausa_stt is down, so not every language is served
    backends = {b.backend_name: b for b in info.backends}
    assert set(backends) == {"whisper_en", "whisper_ar", "hausa_stt"}
    assert backends["whisper_ar"].ready and list(backends["whisper_ar"].language_codes) == ["ar"]
    assert backends["whisper_en"].model and backends["whisper_en"].max_concurrency == 4
    assert backends["hausa_stt"].target.startswith("dns:///") and not backends["hausa_stt"].ready
    routes = {r.pattern: list(r.backends) for r in info.routes}
    assert routes["ar"] == ["whisper_ar", "whisper_en"]


def check(server, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(server.channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_health_per_language_and_overall(router, whisper_server, whisper_ar):
    assert check(router, "stt.v1.Speech/en") == SERVING
    assert check(router, "stt.v1.Speech/ar") == SERVING
    assert check(router, "stt.v1.Speech/ha") == NOT_SERVING
    assert check(router, "") == NOT_SERVING  # one language has no serving backend
    assert http_get(router, "/readyz") == (200, "serving\n")  # the router itself is up
    assert check(router, "router") == SERVING  # what the cluster's probes ask
    settings = router_settings(
        "en=whisper_en;ar=whisper_ar,whisper_en",
        whisper_en=whisper_server.target,
        whisper_ar=whisper_ar.target,
    )
    with running_router(settings) as covered:
        assert check(covered, "") == SERVING
        assert check(covered, "stt.v1.Speech") == SERVING


def test_router_metrics(router, audio_dir):
    def attempts():
        return metric(
            router, "stt_router_attempts_total", backend="whisper_en", code="OK", language="en"
        )

    before = attempts()
    router.stub.Recognize(request(clip(QUILTER), language_code="en"), timeout=45)
    assert attempts() == before + 1
    assert metric(router, "stt_router_requests_total", code="OK", language="en") >= 1
    assert metric(router, "stt_router_request_duration_seconds_count", method="Recognize") >= 1
    assert metric(router, "stt_router_backend_up", backend="whisper_en") == 1
    assert metric(router, "stt_router_backend_up", backend="hausa_stt") == 0
    assert metric(router, "stt_router_language_up", language="ha") == 0
    assert metric(router, "stt_ready", service="router") == 1
