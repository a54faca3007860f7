"""Decoding: every container and raw format to 16 kHz mono, and a precise error for bad audio."""

import io
import wave

import numpy as np
import pytest

from services.core.audio import AudioLimits, AudioSpec, decode
from services.core.errors import InvalidAudio
from tests.support import encode, tone

LIMITS = AudioLimits(max_bytes=8 * 1024 * 1024, max_seconds=60)


def wav_bytes(samples: np.ndarray, rate: int, channels: int = 1) -> bytes:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


@pytest.mark.parametrize(
    ("container", "codec", "rate"),
    [
        ("wav", "pcm_s16le", 8000),
        ("flac", "flac", 44100),
        ("mp3", "libmp3lame", 22050),
        ("ogg", "libopus", 48000),
        ("webm", "libopus", 48000),
        ("ipod", "aac", 16000),  # .m4a
    ],
)
def test_containers_decode_to_16k_mono(container, codec, rate):
    content = encode(tone(2.0, rate), rate, container, codec)
    audio = decode(content, AudioSpec(), LIMITS)
    assert audio.samples.dtype == np.float32
    assert audio.source_rate == rate
    assert audio.duration == pytest.approx(2.0, abs=0.15)  # encoder padding
    assert 0.2 < np.abs(audio.samples).max() < 0.4  # the tone's level survives


def test_raw_linear16_with_rate_and_channels():
    stereo = np.stack([tone(1.0, 8000), tone(1.0, 8000)], axis=1).reshape(-1)
    content = (stereo * 32767).astype("<i2").tobytes()
    audio = decode(content, AudioSpec("linear16", 8000, 2), LIMITS)
    assert audio.duration == pytest.approx(1.0, abs=0.01)
    assert audio.source_channels == 2


def test_raw_mulaw():
    content = bytes([0x80, 0x00] * 4000)  # full-scale square wave in mu-law codes
    audio = decode(content, AudioSpec("mulaw", 8000, 1), LIMITS)
    assert audio.duration == pytest.approx(1.0, abs=0.01)
    assert np.abs(audio.samples).max() > 0.5


def test_linear16_with_a_wav_header_reads_the_header():
    audio = decode(wav_bytes(tone(1.0, 16000), 16000), AudioSpec("linear16"), LIMITS)
    assert audio.duration == pytest.approx(1.0, abs=0.01)


BAD = {
    "empty": (b"", AudioSpec(), "audio is empty"),
    "garbage": (bytes(range(256)) * 40, AudioSpec(), "could not be decoded"),
    "truncated wav": (wav_bytes(tone(2.0), 16000)[:20000], AudioSpec(), "truncated"),
    "odd raw length": (b"\x01\x02\x03", AudioSpec("linear16", 16000), "truncated"),
    "raw without rate": (b"\x01\x02" * 100, AudioSpec("linear16"), "sample_rate_hertz"),
    "wrong rate": (wav_bytes(tone(1.0), 16000), AudioSpec(sample_rate_hertz=8000), "16000 Hz"),
    "too long": (wav_bytes(tone(61.0, 8000), 8000), AudioSpec(), "limit of 60 s"),
    "too many bytes": (b"\x00" * (LIMITS.max_bytes + 1), AudioSpec(), "bytes, over"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_audio_is_refused_precisely(case):
    content, spec, message = BAD[case]
    with pytest.raises(InvalidAudio, match=message):
        decode(content, spec, LIMITS)


def test_silent_audio_is_decoded_and_told_silent():
    audio = decode(wav_bytes(np.zeros(16000), 16000), AudioSpec(), LIMITS)
    assert audio.duration == pytest.approx(1.0, abs=0.01)
    assert audio.silent
    assert not decode(wav_bytes(tone(1.0), 16000), AudioSpec(), LIMITS).silent


def test_nan_samples_are_refused():
    samples = tone(1.0)
    samples[100:200] = np.nan
    content = encode(samples, 16000, "wav", "pcm_f32le")
    with pytest.raises(InvalidAudio, match="NaN"):
        decode(content, AudioSpec(), LIMITS)


def test_truncated_flac_is_refused():
    content = encode(tone(3.0), 16000, "flac", "flac")
    with pytest.raises(InvalidAudio, match=r"truncated|corrupt"):
        decode(content[: len(content) // 2], AudioSpec(), LIMITS)
