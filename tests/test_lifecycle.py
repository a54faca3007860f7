"""Health follows the lifecycle: NOT_SERVING until warm, SERVING, NOT_SERVING while draining."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from services.whisper_en.backend import WhisperBackend
from tests.conftest import SPANS, whisper_settings
from tests.support import clip, request, running, transcript
from tests.test_whisper_en import http_get

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HeldWarmUp(WhisperBackend):
    """The real backend, whose warm-up waits until the test lets it go."""

    def __init__(self, settings):
        super().__init__(settings)
        self.go = threading.Event()

    def warm_up(self) -> None:
        assert self.go.wait(60), "the test never released the warm-up"
        super().warm_up()


def check(channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_not_serving_until_warm(whisper_model, audio_dir):
    settings = whisper_settings(whisper_model)
    backend = HeldWarmUp(settings)
    with running("whisper_en", settings, backend) as server:
        assert check(server.channel) == NOT_SERVING
        assert check(server.channel, "stt.v1.Speech") == NOT_SERVING
        assert http_get(server, "/readyz") == (503, "starting\n")
        assert http_get(server, "/healthz")[0] == 200
        info = server.stub.GetServiceInfo(stt_pb2.GetServiceInfoRequest())
        assert not info.ready and info.state == stt_pb2.ServiceInfo.STARTING
        with pytest.raises(grpc.RpcError) as early:
            server.stub.Recognize(request(clip("en/jfk.flac")))
        assert early.value.code() is grpc.StatusCode.UNAVAILABLE
        backend.go.set()
        assert server.wait_loaded()
        assert check(server.channel) == SERVING
        assert http_get(server, "/readyz") == (200, "serving\n")


def test_a_model_that_fails_to_load_is_never_ready(tmp_path):
    settings = whisper_settings(tmp_path / "no-such-model", model_cache_dir=tmp_path)
    with running("whisper_en", settings, WhisperBackend(settings)) as server:
        assert not server.wait_loaded()
        assert check(server.channel) == NOT_SERVING
        assert http_get(server, "/healthz") == (503, "failed\n")


def test_trace_id_from_traceparent_reaches_every_span(whisper_server, audio_dir):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    SPANS.clear()
    whisper_server.stub.Recognize(
        request(clip("en/mr_quilter_picovoice_leopard.wav"), language_code="en"),
        metadata=(("traceparent", traceparent),),
    )
    spans = {
        s.name: s for s in SPANS.get_finished_spans() if s.context.trace_id == int(trace_id, 16)
    }
    root = spans["stt.v1.Speech/Recognize"]
    assert root.parent.span_id == 0x00F067AA0BA902B7
    for stage in ("stt.decode", "stt.vad", "stt.inference"):
        assert spans[stage].parent.span_id == root.context.span_id


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sigterm_drains_then_exits_zero(whisper_model, audio_dir):
    grpc_port, http_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "services.cli",
        "serve",
        "whisper_en",
        "--model",
        str(whisper_model),
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(http_port),
    ]
    # The in-flight request is about 20 s of work on 2 idle cores, as long as the default
    # grace: give it room, so a busy machine tests draining rather than the grace running out.
    env = {**os.environ, "WHISPER_EN_DRAIN_GRACE_S": "120"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline and process.poll() is None, "never became ready"
            try:
                if check(channel) == SERVING:
                    break
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        stub = stt_pb2_grpc.SpeechStub(channel)
        in_flight = stub.Recognize.future(
            request(clip("en/long_concat_en.flac"), language_code="en")
        )
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert check(channel) == NOT_SERVING
        with pytest.raises(grpc.RpcError) as refused:
            stub.Recognize(request(clip("en/jfk.flac")), timeout=5)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in refused.value.details()
        finished = in_flight.result(timeout=120)
        assert "fellow Americans" in transcript(finished)
        assert process.wait(30) == 0
        channel.close()
    finally:
        if process.poll() is None:
            process.kill()
        log = process.stderr.read()
    assert '"msg": "draining"' in log and '"msg": "stopped"' in log
