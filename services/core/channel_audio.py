"""Decodes request audio channel by channel, each to 16 kHz mono float32, for recognition of
each channel on its own (Google's `enable_separate_recognition_per_channel` with
`audio_channel_count`; a call-centre recording puts agent and customer on two channels).

`services.core.audio.decode` mixes channels down to one; this keeps them apart, under the same
limits and with the same checks (its WAV header, raw-frame and length checks are shared). The
channel count the client gives must be the audio's own: a container declares its count, and
raw audio is split by the count given. A silent channel is not an error here (one party of a
call may say nothing): `ChannelAudio.silent` tells the caller which channels to skip.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

from services.core.audio import (
    DURATION_TOLERANCE_S,
    MAX_CHANNELS,
    RAW_ENCODINGS,
    SILENCE_PEAK,
    AudioLimits,
    AudioSpec,
    _check_wav_header,
    _raw_frames,
    _too_long,
    mulaw_to_float,
)
from services.core.backend import SAMPLE_RATE
from services.core.errors import InvalidAudio


@dataclass(frozen=True)
class ChannelAudio:
    channels: tuple[np.ndarray, ...]  # one float32 array per channel, SAMPLE_RATE, equal length
    source_rate: int
    container: str

    @property
    def duration(self) -> float:
        return len(self.channels[0]) / SAMPLE_RATE

    def silent(self, index: int) -> bool:
        """Channel `index` (0-based) holds nothing a model can hear."""
        samples = self.channels[index]
        return not samples.size or float(np.abs(samples).max()) < SILENCE_PEAK


def decode_channels(content: bytes, spec: AudioSpec, limits: AudioLimits) -> ChannelAudio:
    """Each channel of `content`; `spec.channels` is the count the client gave (0: the
    container's own, or 1 for raw audio)."""
    if not content:
        raise InvalidAudio("audio is empty: put the audio bytes in audio.content")
    if len(content) > limits.max_bytes:
        raise InvalidAudio(
            f"audio is {len(content)} bytes, over this service's limit of {limits.max_bytes} bytes"
        )
    if not 0 <= spec.channels <= MAX_CHANNELS:
        raise InvalidAudio(f"audio_channel_count must be 1 to {MAX_CHANNELS}, got {spec.channels}")
    if spec.encoding in RAW_ENCODINGS and not content.startswith(b"RIFF"):
        decoded = _decode_raw(content, spec, limits)
    else:
        decoded = _decode_container(content, spec, limits)
    for samples in decoded.channels:
        if not np.isfinite(samples).all():
            raise InvalidAudio("audio contains NaN or infinite samples")
    if not len(decoded.channels[0]):
        raise InvalidAudio("audio decoded to zero samples")
    return decoded


def _decode_raw(content: bytes, spec: AudioSpec, limits: AudioLimits) -> ChannelAudio:
    rate, count = spec.sample_rate_hertz, spec.channels or 1
    frames = _raw_frames(content, spec)
    if frames / rate > limits.max_seconds:
        raise InvalidAudio(_too_long(frames / rate, limits))
    if spec.encoding == "linear16":
        pcm = np.frombuffer(content, dtype="<i2").astype(np.float32) / 32768.0
    else:
        pcm = mulaw_to_float(np.frombuffer(content, dtype=np.uint8))
    planar = np.ascontiguousarray(pcm.reshape(frames, count).T)
    layout = _layout(count)
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
    parts = [out.to_ndarray() for out in resampler.resample(frame)]
    return ChannelAudio(_split(parts, resampler, count), rate, spec.encoding)


def _decode_container(content: bytes, spec: AudioSpec, limits: AudioLimits) -> ChannelAudio:
    _check_wav_header(content)
    try:
        container = av.open(io.BytesIO(content), mode="r")
    except (av.FFmpegError, ValueError) as exc:
        raise InvalidAudio(f"audio could not be decoded as any known format: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise InvalidAudio(f"the {container.format.name} container holds no audio stream")
        stream = container.streams.audio[0]
        _check_stream(stream, container.format.name, spec)
        declared = container.duration / 1e6 if container.duration else None
        if declared and declared > limits.max_seconds:
            raise InvalidAudio(_too_long(declared, limits))
        channels = _decode_stream(container, stream, limits)
        decoded = ChannelAudio(channels, stream.rate, container.format.name)
    if declared and decoded.duration + DURATION_TOLERANCE_S < declared:
        raise InvalidAudio(
            f"audio is truncated: the {decoded.container} stream declares {declared:.2f} s "
            f"but only {decoded.duration:.2f} s could be decoded"
        )
    return decoded


def _check_stream(stream, container: str, spec: AudioSpec) -> None:
    if spec.channels and spec.channels != stream.channels:
        plural = "" if stream.channels == 1 else "s"
        raise InvalidAudio(
            f"audio_channel_count is {spec.channels} but the {container} audio has "
            f"{stream.channels} channel{plural}: leave it 0, or send the audio's own count"
        )
    if spec.sample_rate_hertz and spec.sample_rate_hertz != stream.rate:
        raise InvalidAudio(
            f"sample_rate_hertz is {spec.sample_rate_hertz} but the audio is "
            f"{stream.rate} Hz: leave it 0 for container audio, or send the right rate"
        )
    if stream.channels > MAX_CHANNELS:
        raise InvalidAudio(
            f"the audio has {stream.channels} channels, over the limit of {MAX_CHANNELS}"
        )


def _decode_stream(container, stream, limits: AudioLimits) -> tuple[np.ndarray, ...]:
    count = stream.channels
    resampler: av.AudioResampler | None = None
    parts: list[np.ndarray] = []
    total, max_samples = 0, int(limits.max_seconds * SAMPLE_RATE)
    try:
        for frame in container.decode(stream):
            # The frame's own layout, so the resampler converts rate and format only and
            # never remixes one channel into another.
            resampler = resampler or av.AudioResampler("fltp", frame.layout, SAMPLE_RATE)
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray())
                total += parts[-1].shape[1]
            if total > max_samples:
                raise InvalidAudio(_too_long(total / SAMPLE_RATE, limits, at_least=True))
    except av.FFmpegError as exc:
        raise InvalidAudio(
            f"audio is corrupt or truncated after {total / SAMPLE_RATE:.2f} s of "
            f"{container.format.name}/{stream.codec_context.name}: {exc}"
        ) from exc
    if resampler is None:
        raise InvalidAudio(f"the {container.format.name} audio stream holds no samples")
    return _split(parts, resampler, count)


def _split(parts: list[np.ndarray], resampler: av.AudioResampler, count: int):
    """Planar resampled blocks (and what the resampler still holds) as one array a channel."""
    parts += [out.to_ndarray() for out in resampler.resample(None)]
    if not parts:
        return tuple(np.zeros(0, dtype=np.float32) for _ in range(count))
    joined = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
    return tuple(np.ascontiguousarray(joined[index]) for index in range(count))


def _layout(count: int) -> str:
    """A layout of `count` channels for raw audio (its channels have no named positions)."""
    return "mono" if count == 1 else f"{count}c"
