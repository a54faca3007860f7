"""The speech the container check sends: espeak-ng's, made on the spot (it runs anywhere),
and the shared jfk clip with its transcript where the shared clips are on this machine
(read at run time, never copied into the repository)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JFK = "en/jfk.flac"
# Said by one voice to Recognize and OpenAI's API; said in turn by two to a job with speakers.
# Sentences the bundled Whisper base model hears word for word from espeak-ng's voices.
SENTENCE = "The router sends this sentence to the English service."
TURNS = (
    ("en+m3", 35, "Let us begin with the budget for next year."),
    ("en+f3", 75, "I think we should spend less on travel and more on training."),
)
PAUSE_S = 0.8


@dataclass(frozen=True)
class Clip:
    name: str
    content: bytes
    text: str  # what is said, as the manifest or the synthesis script has it


def shared_dir() -> Path:
    return Path(os.environ.get("STT_SHARED_AUDIO") or REPO.parent / "shared" / "audio")


def jfk() -> Clip | None:
    """The jfk clip and its transcript from MANIFEST.tsv, or None where they are not here."""
    manifest = shared_dir() / "MANIFEST.tsv"
    if not manifest.is_file():
        return None
    lines = manifest.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        if row["path"] == JFK:
            return Clip("jfk", (shared_dir() / JFK).read_bytes(), row["transcript"])
    return None


def spoken() -> Clip:
    return Clip("espeak", _wav(_speak(SENTENCE, "en-us", 50)), SENTENCE)


def conversation() -> Clip:
    """Two voices in turn, a pause between them, as one 16-bit mono WAV."""
    pieces = []
    for voice, pitch, line in TURNS:
        pieces += [_speak(line, voice, pitch), b"\0\0" * int(PAUSE_S * _RATE)]
    return Clip("conversation", _wav(b"".join(pieces)), " ".join(t[2] for t in TURNS))


def words(text: str) -> list[str]:
    """Lower-case words without punctuation: what two transcripts are compared on."""
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))


_RATE = 22_050  # espeak-ng's output rate


def _speak(text: str, voice: str, pitch: int) -> bytes:
    """espeak-ng's 16-bit samples at 22.05 kHz, without the WAV header."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        command = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", "150", "-w", str(path), text]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        with wave.open(str(path)) as reader:
            if reader.getframerate() != _RATE or reader.getnchannels() != 1:
                raise RuntimeError("espeak-ng wrote audio in a format not expected here")
            return reader.readframes(reader.getnframes())


def _wav(samples: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(_RATE)
        writer.writeframes(samples)
    return out.getvalue()
