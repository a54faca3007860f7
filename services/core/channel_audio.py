"""Decodes request audio channel by channel, each to 16 kHz mono float32, for recognition of
each channel on its own (Google's `enable_separate_recognition_per_channel` with
`audio_channel_count`; a call-centre recording puts agent and customer on two channels).

`services.core.audio.decode` mixes channels down to one; this keeps them apart, with the same
steps (opening and checking the container, decoding within the limits, the length check). The
channel count the client gives must be the audio's own: a container declares its count, and
raw audio is split by the count given. A silent channel is not an error here (one party of a
call may say nothing): `ChannelAudio.silent` tells the caller which channels to skip.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from services.core.audio import (
    MAX_CHANNELS,
    SILENCE_PEAK,
    AudioLimits,
    AudioSpec,
    check_length,
    decoded_blocks,
    is_raw,
    opened,
    raw_samples,
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
    if not 0 <= spec.channels <= MAX_CHANNELS:
        raise InvalidAudio(f"audio_channel_count must be 1 to {MAX_CHANNELS}, got {spec.channels}")
    if is_raw(content, spec):
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
    pcm = raw_samples(content, spec, limits)
    count = pcm.shape[1]
    layout = _layout(count)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm.T), format="fltp", layout=layout)
    frame.sample_rate = spec.sample_rate_hertz
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
    parts = [out.to_ndarray() for out in resampler.resample(frame)]
    return ChannelAudio(_split(parts, resampler, count), spec.sample_rate_hertz, spec.encoding)


def _decode_container(content: bytes, spec: AudioSpec, limits: AudioLimits) -> ChannelAudio:
    with opened(content, spec, limits) as (container, stream, declared):
        _check_channels(stream, container.format.name, spec)
        resamplers: list[av.AudioResampler] = []

        def resampler_for(frame) -> av.AudioResampler:
            # The frame's own layout, so the resampler converts rate and format only and
            # never remixes one channel into another.
            resamplers.append(av.AudioResampler("fltp", frame.layout, SAMPLE_RATE))
            return resamplers[0]

        blocks = decoded_blocks(container, stream, limits, resampler_for)
        if not resamplers:
            raise InvalidAudio(f"the {container.format.name} audio stream holds no samples")
        channels = _split(blocks, resamplers[0], stream.channels)
        decoded = ChannelAudio(channels, stream.rate, container.format.name)
    check_length(declared, decoded.duration, decoded.container)
    return decoded


def _check_channels(stream, container: str, spec: AudioSpec) -> None:
    if spec.channels and spec.channels != stream.channels:
        plural = "" if stream.channels == 1 else "s"
        raise InvalidAudio(
            f"audio_channel_count is {spec.channels} but the {container} audio has "
            f"{stream.channels} channel{plural}: leave it 0, or send the audio's own count"
        )
    if stream.channels > MAX_CHANNELS:
        raise InvalidAudio(
            f"the audio has {stream.channels} channels, over the limit of {MAX_CHANNELS}"
        )


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
