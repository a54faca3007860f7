"""`stt transcribe` against a real server: text, words, JSON, and errors with exit codes."""

import json
import subprocess
import sys

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
