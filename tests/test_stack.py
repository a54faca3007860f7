"""`stt up` as `make run` starts it: the router in front of whisper_en and the diarization
service in one process tree, answering through the router, and stopped cleanly by SIGINT
(Ctrl-C). Its ports are moved by
an offset so the test never meets a stack already running on the contract's ports."""

import os
import random
import signal
import socket
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from services import registry, stack
from services.jobs.worker.settings import WORKER_HTTP_PORT
from tests.support import clip, request, transcript


def free_offset() -> int:
    """An offset at which every port of the stack is free now."""
    ports = [stack.ROUTER_GRPC_PORT, stack.ROUTER_HTTP_PORT, WORKER_HTTP_PORT]
    ports += [p for m in registry.MEMBERS for p in (m.grpc_port, m.http_port)]
    for _ in range(50):
        offset = random.randrange(1000, 12000)
        if all(_free(port + offset) for port in ports):
            return offset
    raise AssertionError("no free set of ports found")


def _free(port: int) -> bool:
    """Whether a server could listen on the port now. Like the servers, the probe reuses
    ports whose closed connections linger in TIME_WAIT."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_serving(channel, within_s: float) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            request = health_pb2.HealthCheckRequest(service="")
            if health.Check(request, timeout=2).status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the stack was not serving within {within_s} s")


def wait_backend_ready(stub, name: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        info = stub.GetServiceInfo(stt_pb2.GetServiceInfoRequest(), timeout=10)
        if any(b.backend_name == name and b.ready for b in info.backends):
            return
        time.sleep(0.3)
    raise AssertionError(f"backend {name} was not ready within {within_s} s")


def test_stt_up_serves_through_the_router_and_stops_on_ctrl_c(whisper_model, audio_dir, tmp_path):
    offset = free_offset()
    env = {**os.environ, "WHISPER_EN_MODEL": str(whisper_model), "WHISPER_EN_CPU_THREADS": "2"}
    command = [sys.executable, "-m", "services.cli", "up", "--port-offset", str(offset)]
    command += ["--data-dir", str(tmp_path)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    router = grpc.insecure_channel(f"127.0.0.1:{stack.ROUTER_GRPC_PORT + offset}")
    try:
        wait_serving(router, 180)
        stub = stt_pb2_grpc.SpeechStub(router)
        response = stub.Recognize(request(clip("en/jfk.flac"), language_code="en"), timeout=120)
        assert response.service == "whisper_en"
        assert transcript(response).startswith("And so my fellow Americans")
        # The router serves once every route is covered; the diarization service may still
        # be warming up then.
        wait_backend_ready(stub, "diarization", 120)
        speakers = request(clip("en/jfk.flac"), language_code="en")
        speakers.config.diarization_config.enable_speaker_diarization = True
        labelled = stub.Recognize(speakers, timeout=120).results[0].alternatives[0].words
        assert {w.speaker_label for w in labelled} == {"1"}
        info = stub.GetServiceInfo(stt_pb2.GetServiceInfoRequest(), timeout=10)
        whisper_port = registry.MEMBERS[0].grpc_port + offset
        diarization_port = registry.MEMBERS[3].grpc_port + offset
        assert [b.target for b in info.backends] == [
            f"dns:///127.0.0.1:{whisper_port}",
            f"dns:///127.0.0.1:{diarization_port}",
        ]
        # `*` goes to whisper_en: the router lists every language Whisper knows.
        assert {"ar", "en", "ha", "de", "es", "ru"} <= set(info.language_codes)
        assert {r.pattern: list(r.backends) for r in info.routes}["*"] == ["whisper_en"]
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        router.close()
        if process.poll() is None:
            process.kill()
        log = process.stderr.read()
    assert '"exit_codes": {"whisper_en": 0, "diarization": 0, "worker": 0}' in log
    assert not _listening(whisper_port), "whisper_en outlived the tree"
    assert not _listening(diarization_port), "diarization outlived the tree"


def test_stt_router_refuses_an_empty_routing_table():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "router", "--grpc-port", "0", "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert "no routes" in done.stderr
