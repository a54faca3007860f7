"""`stt serve hausa_stt|arabic_words` with whisper_en's flags, and `stt transcribe` against it."""

import os
import signal
import subprocess
import sys
import time

import grpc

from tests.ctc_support import TINY_CASES, model_dir
from tests.support import AUDIO_DIR
from tests.test_cli import stt
from tests.test_lifecycle import SERVING, check, free_port


def serve(service: str, model: str, grpc_port: int, env: dict | None = None) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "services.cli",
        "serve",
        service,
        "--model",
        model,
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(free_port()),
        "--max-concurrency",
        "2",
        "--max-queue",
        "1",
        "--device",
        "cpu",
        "--compute-type",
        "float32",
    ]
    return subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )


def wait_serving(process: subprocess.Popen, port: int, within_s: float = 120) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    deadline = time.monotonic() + within_s
    try:
        while True:
            assert time.monotonic() < deadline and process.poll() is None, "never became ready"
            try:
                if check(channel) == SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    finally:
        channel.close()


def test_serve_and_transcribe_arabic_words(tiny_models, audio_dir):
    case = next(c for c in TINY_CASES if c.service == "arabic_words")
    port = free_port()
    process = serve(case.service, str(model_dir(case, tiny_models)), port)
    try:
        wait_serving(process, port)
        path = str(AUDIO_DIR / case.clip)
        target = f"127.0.0.1:{port}"
        done = stt("transcribe", path, "--target", target, "--language", "ar", "--words")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines and lines[0].strip()
        assert any(len(line.split()) == 4 for line in lines[1:])  # start, end, confidence, word
        ranked = stt("transcribe", path, "--target", target, "--phrase", "قهوة", "--phrase", "حمص")
        assert ranked.returncode == 0, ranked.stderr
        scores = [line.split() for line in ranked.stdout.splitlines()[1:]]
        assert sorted(word for _, word in scores) == ["حمص", "قهوة"]
        assert [float(score) for score, _ in scores] == sorted(
            (float(score) for score, _ in scores), reverse=True
        )
        refused = stt("transcribe", path, "--target", target, "--language", "ha")
        assert refused.returncode == 1 and "INVALID_ARGUMENT" in refused.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log = process.stderr.read()
    assert '"msg": "ready"' in log and '"msg": "stopped"' in log


def test_an_absent_hub_model_offline_fails_fast_with_exit_1():
    process = serve(
        "hausa_stt", "stt-suite-tests/absent-model", free_port(), env={"HF_HUB_OFFLINE": "1"}
    )
    try:
        assert process.wait(120) == 1
    finally:
        if process.poll() is None:
            process.kill()
    assert "model failed to load" in process.stderr.read()
