"""Per-channel decoding (`services.core.channel_audio`) on multichannel audio made here."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from services.core.audio import AudioLimits, AudioSpec
from services.core.backend import SAMPLE_RATE
from services.core.channel_audio import decode_channels
from services.core.errors import InvalidAudio

LIMITS = AudioLimits(max_bytes=10_000_000, max_seconds=60)


def tones(freqs: list[float], seconds: float, rate: int) -> np.ndarray:
    """One sine a channel (0 Hz: a silent channel), shape (channels, samples)."""
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * f * t) * (f > 0) for f in freqs]).astype(np.float32)


def encode(planar: np.ndarray, rate: int, container: str, codec: str) -> bytes:
    """Planar float32 samples encoded with PyAV, channels kept apart."""
    layout = "mono" if len(planar) == 1 else "stereo" if len(planar) == 2 else f"{len(planar)}c"
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = rate
        fmt = stream.codec_context.codec.audio_formats[0].name
        for resampled in av.AudioResampler(format=fmt, layout=layout, rate=rate).resample(frame):
            for packet in stream.encode(resampled):
                muxer.mux(packet)
        for packet in stream.encode(None):
            muxer.mux(packet)
    return out.getvalue()


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[spectrum.argmax()])


@pytest.mark.parametrize(
    ("container", "codec", "rate"),
    [("wav", "pcm_s16le", 44_100), ("flac", "flac", 16_000), ("ogg", "libopus", 48_000)],
)
def test_each_channel_comes_back_on_its_own(container, codec, rate):
    content = encode(tones([440, 1000], 1.0, rate), rate, container, codec)
    decoded = decode_channels(content, AudioSpec(channels=2), LIMITS)
    assert len(decoded.channels) == 2
    assert decoded.source_rate == rate
    assert abs(dominant_hz(decoded.channels[0]) - 440) < 5
    assert abs(dominant_hz(decoded.channels[1]) - 1000) < 5
    assert decoded.duration == pytest.approx(1.0, abs=0.05)
    assert len(decoded.channels[0]) == len(decoded.channels[1])


def test_channel_count_zero_takes_the_containers_own():
    content = encode(tones([300, 600, 900], 0.5, 16_000), 16_000, "wav", "pcm_s16le")
    decoded = decode_channels(content, AudioSpec(), LIMITS)
    assert [round(dominant_hz(c) / 100) for c in decoded.channels] == [3, 6, 9]


def test_mono_audio_with_one_channel_asked_is_one_channel():
    # Google's own multichannel beta sample sends mono audio with audio_channel_count=1.
    content = encode(tones([440], 0.5, 16_000), 16_000, "wav", "pcm_s16le")
    decoded = decode_channels(content, AudioSpec(channels=1), LIMITS)
    assert len(decoded.channels) == 1


def test_a_silent_channel_is_told_not_refused():
    content = encode(tones([440, 0], 0.5, 16_000), 16_000, "wav", "pcm_s16le")
    decoded = decode_channels(content, AudioSpec(channels=2), LIMITS)
    assert not decoded.silent(0)
    assert decoded.silent(1)


def test_raw_linear16_is_split_by_the_count_given():
    planar = tones([500, 2000], 0.5, 8_000)
    interleaved = (planar.T * 32767).astype("<i2").tobytes()
    spec = AudioSpec(encoding="linear16", sample_rate_hertz=8_000, channels=2)
    decoded = decode_channels(interleaved, spec, LIMITS)
    assert abs(dominant_hz(decoded.channels[0]) - 500) < 5
    assert abs(dominant_hz(decoded.channels[1]) - 2000) < 5
    assert decoded.duration == pytest.approx(0.5, abs=0.01)


def test_a_count_that_is_not_the_audios_is_refused_with_both_counts():
    content = encode(tones([440, 880], 0.5, 16_000), 16_000, "wav", "pcm_s16le")
    with pytest.raises(InvalidAudio, match=r"audio_channel_count is 1 but the wav audio has 2 ch"):
        decode_channels(content, AudioSpec(channels=1), LIMITS)
    mono = encode(tones([440], 0.5, 16_000), 16_000, "wav", "pcm_s16le")
    with pytest.raises(InvalidAudio, match=r"is 2 but the wav audio has 1 channel:"):
        decode_channels(mono, AudioSpec(channels=2), LIMITS)


def test_raw_audio_that_is_not_whole_frames_of_the_count_is_refused():
    odd = np.zeros(3, dtype="<i2").tobytes()  # 3 samples: not whole 2-channel frames
    spec = AudioSpec(encoding="linear16", sample_rate_hertz=16_000, channels=2)
    with pytest.raises(InvalidAudio, match=r"truncated.*2-channel"):
        decode_channels(odd, spec, LIMITS)


def test_counts_out_of_range_are_refused():
    content = encode(tones([440], 0.2, 16_000), 16_000, "wav", "pcm_s16le")
    with pytest.raises(InvalidAudio, match="audio_channel_count must be 1 to 32, got 33"):
        decode_channels(content, AudioSpec(channels=33), LIMITS)
    with pytest.raises(InvalidAudio, match="audio_channel_count must be 1 to 32, got -1"):
        decode_channels(content, AudioSpec(channels=-1), LIMITS)


def test_the_limits_hold_per_request():
    content = encode(tones([440, 880], 2.0, 16_000), 16_000, "wav", "pcm_s16le")
    with pytest.raises(InvalidAudio, match="over this service's limit of 1 s"):
        decode_channels(content, AudioSpec(channels=2), AudioLimits(10_000_000, 1))
    with pytest.raises(InvalidAudio, match="bytes, over this service's limit of 1000 bytes"):
        decode_channels(content, AudioSpec(channels=2), AudioLimits(1000, 60))


def test_a_wrong_rate_and_bytes_that_are_no_audio_are_refused():
    content = encode(tones([440, 880], 0.2, 16_000), 16_000, "wav", "pcm_s16le")
    with pytest.raises(InvalidAudio, match="sample_rate_hertz is 8000 but the audio is 16000 Hz"):
        decode_channels(content, AudioSpec(sample_rate_hertz=8000), LIMITS)
    with pytest.raises(InvalidAudio, match="could not be decoded"):
        decode_channels(b"not audio at all" * 10, AudioSpec(channels=2), LIMITS)
    with pytest.raises(InvalidAudio, match="audio is empty"):
        decode_channels(b"", AudioSpec(channels=2), LIMITS)


def test_a_cut_wav_is_refused():
    content = encode(tones([440, 880], 1.0, 16_000), 16_000, "wav", "pcm_s16le")
    with pytest.raises(InvalidAudio, match="truncated"):
        decode_channels(content[: len(content) // 2], AudioSpec(channels=2), LIMITS)
