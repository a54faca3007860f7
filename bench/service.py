"""whisper_en as it is deployed: `stt serve whisper_en` in its own process, on loopback.

Its own process, not a thread of the benchmark, so the service and the in-process library do
not share an interpreter: each has its own GIL and garbage collector (the service freezes its
start-up objects; a library user's `decode_audio` pays a full `gc.collect()`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families
from stt.v1 import stt_pb2, stt_pb2_grpc

from bench.config import LANGUAGE
from services.whisper_en.settings import WhisperSettings
from tests.support import REPO, request, transcript

COMMAND = (sys.executable, "-m", "services.cli", "serve", "whisper_en")
ENV_PREFIX = "WHISPER_EN_"
START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 600.0
POLL_S = 0.05


class Service:
    """A running whisper_en: its gRPC stub, its process id and its /metrics."""

    def __init__(self, pid: int, grpc_port: int, http_port: int):
        self.pid = pid
        self._metrics_url = f"http://127.0.0.1:{http_port}/metrics"
        self._channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        self.stub = stt_pb2_grpc.SpeechStub(self._channel)

    def recognize(self, content: bytes, timeout_s: float = CALL_TIMEOUT_S) -> str:
        return transcript(self.stub.Recognize(english(content), timeout=timeout_s))

    def recognize_plain(self, content: bytes, vad: bool) -> str:
        """Recognize with the request's own VAD switch (off: the audio as one piece)."""
        message = english(content)
        message.config.enable_voice_activity_detection = vad
        return transcript(self.stub.Recognize(message, timeout=CALL_TIMEOUT_S))

    def in_flight(self) -> float:
        """Inferences running now, read from the service's own gauge."""
        with urllib.request.urlopen(self._metrics_url, timeout=5) as answer:
            text = answer.read().decode()
        for family in text_string_to_metric_families(text):
            if family.name == "stt_inflight_requests":
                return sum(sample.value for sample in family.samples)
        raise RuntimeError("the service exports no stt_inflight_requests gauge")

    def close(self) -> None:
        self._channel.close()


def english(content: bytes) -> stt_pb2.RecognizeRequest:
    """A Recognize request for these bytes, language given (as the library call gets it)."""
    return request(content, language_code=LANGUAGE)


@contextlib.contextmanager
def serving(settings: WhisperSettings) -> Iterator[Service]:
    """Starts whisper_en with these settings, waits until it has warmed up, stops it after."""
    with tempfile.TemporaryDirectory(prefix="stt-bench-") as folder:
        log_path = Path(folder) / "service.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                COMMAND, cwd=REPO, env=_environment(settings), stdout=log, stderr=log
            )
        try:
            service = Service(process.pid, *_wait_until_ready(process, log_path))
            try:
                yield service
            finally:
                service.close()
        finally:
            _stop(process)


def _environment(settings: WhisperSettings) -> dict[str, str]:
    """The settings given explicitly, as the service reads them: WHISPER_EN_* variables."""
    env = dict(os.environ)
    env |= {name: str(value) for name, value in settings.given_variables()}
    # Info level, for the "listening" and "ready" lines; no grace, nothing is left running.
    env |= {ENV_PREFIX + "LOG_LEVEL": "info", ENV_PREFIX + "DRAIN_GRACE_S": "0"}
    return env


def _wait_until_ready(process: subprocess.Popen, log_path: Path) -> tuple[int, int]:
    """The gRPC and HTTP ports, read from the service's JSON log once it says "ready"."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        entries = _log_entries(log_path)
        listening = next((e for e in entries if e.get("msg") == "listening"), None)
        if listening and any(e.get("msg") == "ready" for e in entries):
            return int(listening["grpc_port"]), int(listening["http_port"])
        time.sleep(POLL_S)
    tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
    raise RuntimeError(f"whisper_en did not become ready; its log ends with:\n{tail}")


def _log_entries(log_path: Path) -> list[dict]:
    entries = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entries.append(json.loads(line))
    return [entry for entry in entries if isinstance(entry, dict)]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)
