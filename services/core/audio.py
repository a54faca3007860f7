"""Decodes request audio in process, with PyAV, to 16 kHz mono float32.

Containers (wav, flac, mp3, ogg/opus, webm, m4a) are detected from the bytes; raw LINEAR16 and
mu-law need their sample rate. Every way audio can be unusable raises `InvalidAudio` with a
message that says what is wrong, and decoding stops as soon as a limit is passed, so a huge
file never fills memory. Silent audio is not unusable: it holds no speech, and its answer is
no results (as Google's, Riva's and OpenAI's).
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np

from services.core.backend import SAMPLE_RATE
from services.core.errors import InvalidAudio

RAW_ENCODINGS = ("linear16", "mulaw")
MIN_RAW_RATE, MAX_RAW_RATE = 4_000, 384_000
MAX_CHANNELS = 32
# Below this peak level (-80 dBFS) the audio holds nothing a model can hear.
SILENCE_PEAK = 1e-4
# Decoded audio may fall short of the declared length by this much (encoder padding).
DURATION_TOLERANCE_S = 0.25
STREAMED_WAV_SIZE = 0x7FFF0000


@dataclass(frozen=True)
class AudioSpec:
    """How the client says its bytes are encoded; `encoding` is "detect" for containers."""

    encoding: str = "detect"
    sample_rate_hertz: int = 0
    channels: int = 0
    # Each channel recognised on its own (see `channel_audio`), instead of a mix of them.
    separate_channels: bool = False


@dataclass(frozen=True)
class AudioLimits:
    max_bytes: int
    max_seconds: float


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, mono, SAMPLE_RATE
    source_rate: int
    source_channels: int
    container: str

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def silent(self) -> bool:
        """Digitally silent: nothing a model can hear (the answer is no results)."""
        return float(np.abs(self.samples).max()) < SILENCE_PEAK


def decode(content: bytes, spec: AudioSpec, limits: AudioLimits) -> DecodedAudio:
    """The audio mixed down to one channel."""
    if is_raw(content, spec):
        decoded = _decode_raw(content, spec, limits)
    else:
        decoded = _decode_container(content, spec, limits)
    check_samples(decoded.samples)
    return decoded


def check_size(content: bytes, limits: AudioLimits) -> None:
    if not content:
        raise InvalidAudio("audio is empty: put the audio bytes in audio.content")
    if len(content) > limits.max_bytes:
        raise InvalidAudio(
            f"audio is {len(content)} bytes, over this service's limit of {limits.max_bytes} bytes"
        )


def is_raw(content: bytes, spec: AudioSpec) -> bool:
    """Raw samples (LINEAR16, mu-law) rather than a container."""
    return spec.encoding in RAW_ENCODINGS and not content.startswith(b"RIFF")


def probe(content: bytes, spec: AudioSpec, limits: AudioLimits) -> float:
    """The audio's duration in seconds, found without decoding all of it.

    For audio accepted now and decoded later (a long-running job): refuses what `decode` would
    refuse up front (empty, over the limits, a raw format without its rate, a truncated WAV,
    bytes no decoder reads, no audio stream) after decoding only the first frames. The duration
    is the container's own, or the sum of its packets' durations when it declares none.
    """
    check_size(content, limits)
    if is_raw(content, spec):
        seconds = raw_frames(content, spec) / spec.sample_rate_hertz
    else:
        seconds = _probe_container(content, spec)
    if seconds > limits.max_seconds:
        raise InvalidAudio(too_long(seconds, limits))
    return seconds


def _probe_container(content: bytes, spec: AudioSpec) -> float:
    check_wav_header(content)
    try:
        with av.open(io.BytesIO(content), mode="r") as container:
            if not container.streams.audio:
                raise InvalidAudio(f"the {container.format.name} container holds no audio stream")
            stream = container.streams.audio[0]
            if spec.sample_rate_hertz and spec.sample_rate_hertz != stream.rate:
                raise InvalidAudio(
                    f"sample_rate_hertz is {spec.sample_rate_hertz} but the audio is "
                    f"{stream.rate} Hz: leave it 0 for container audio, or send the right rate"
                )
            if next(iter(container.decode(stream)), None) is None:
                raise InvalidAudio(f"the {container.format.name} audio stream holds no samples")
            if container.duration:
                return container.duration / 1e6
        with av.open(io.BytesIO(content), mode="r") as container:
            return _packet_seconds(container, container.streams.audio[0])
    except (av.FFmpegError, ValueError) as exc:
        raise InvalidAudio(f"audio could not be decoded as any known format: {exc}") from exc


def _packet_seconds(container, stream) -> float:
    """The end of the last packet, for containers that do not declare a duration (live webm)."""
    end = 0
    for packet in container.demux(stream):
        if packet.pts is not None:
            end = max(end, packet.pts + (packet.duration or 0))
    return float(end * stream.time_base) if stream.time_base else 0.0


def raw_frames(content: bytes, spec: AudioSpec) -> int:
    """Frames in raw audio, after checking that the spec can describe it."""
    rate, channels = spec.sample_rate_hertz, spec.channels or 1
    if not MIN_RAW_RATE <= rate <= MAX_RAW_RATE:
        raise InvalidAudio(
            f"raw {spec.encoding.upper()} audio needs sample_rate_hertz between "
            f"{MIN_RAW_RATE} and {MAX_RAW_RATE}, got {rate}"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidAudio(f"audio_channel_count must be 1 to {MAX_CHANNELS}, got {channels}")
    width = 2 if spec.encoding == "linear16" else 1
    if len(content) % (width * channels):
        raise InvalidAudio(
            f"raw {spec.encoding.upper()} audio is truncated: {len(content)} bytes is not a whole "
            f"number of {channels}-channel {8 * width}-bit samples"
        )
    return len(content) // (width * channels)


def raw_samples(content: bytes, spec: AudioSpec, limits: AudioLimits) -> np.ndarray:
    """Raw audio as float32 (frames, channels), at its own rate, within the limits."""
    check_size(content, limits)
    rate, channels = spec.sample_rate_hertz, spec.channels or 1
    frames = raw_frames(content, spec)
    if frames / rate > limits.max_seconds:
        raise InvalidAudio(too_long(frames / rate, limits))
    if spec.encoding == "linear16":
        pcm = np.frombuffer(content, dtype="<i2").astype(np.float32) / 32768.0
    else:
        pcm = mulaw_to_float(np.frombuffer(content, dtype=np.uint8))
    return pcm.reshape(frames, channels)


def _decode_raw(content: bytes, spec: AudioSpec, limits: AudioLimits) -> DecodedAudio:
    rate, channels = spec.sample_rate_hertz, spec.channels or 1
    mono = raw_samples(content, spec, limits).mean(axis=1, dtype=np.float32)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    frame = av.AudioFrame.from_ndarray(mono[np.newaxis, :], format="flt", layout="mono")
    frame.sample_rate = rate
    samples = _flush(resampler, [*resampler.resample(frame)])
    return DecodedAudio(samples, rate, channels, spec.encoding)


def mulaw_to_float(codes: np.ndarray) -> np.ndarray:
    """G.711 mu-law expansion."""
    inverted = ~codes
    sign = np.where(inverted & 0x80, -1.0, 1.0)
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    return (sign * (magnitude - 0x84) / 32768.0).astype(np.float32)


def _decode_container(content: bytes, spec: AudioSpec, limits: AudioLimits) -> DecodedAudio:
    with opened(content, spec, limits) as (container, stream, declared):
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        blocks = decoded_blocks(container, stream, limits, lambda frame: resampler)
        samples = _flush(resampler, [block[0] for block in blocks])
        decoded = DecodedAudio(samples, stream.rate, stream.channels, container.format.name)
    check_length(declared, decoded.duration, decoded.container)
    return decoded


@contextlib.contextmanager
def opened(content: bytes, spec: AudioSpec, limits: AudioLimits) -> Iterator[tuple]:
    """The container's (container, first audio stream, declared seconds or None), after the
    checks every decode makes before it reads a sample."""
    check_size(content, limits)
    check_wav_header(content)
    try:
        container = av.open(io.BytesIO(content), mode="r")
    except (av.FFmpegError, ValueError) as exc:
        raise InvalidAudio(f"audio could not be decoded as any known format: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise InvalidAudio(f"the {container.format.name} container holds no audio stream")
        stream = container.streams.audio[0]
        declared = container.duration / 1e6 if container.duration else None
        if declared and declared > limits.max_seconds:
            raise InvalidAudio(too_long(declared, limits))
        if spec.sample_rate_hertz and spec.sample_rate_hertz != stream.rate:
            raise InvalidAudio(
                f"sample_rate_hertz is {spec.sample_rate_hertz} but the audio is "
                f"{stream.rate} Hz: leave it 0 for container audio, or send the right rate"
            )
        yield container, stream, declared


def decoded_blocks(
    container, stream, limits: AudioLimits, resampler_for: Callable[[object], av.AudioResampler]
) -> list[np.ndarray]:
    """The stream decoded and resampled, block by block (planar: channels x samples), by the
    resampler `resampler_for(first frame)` gives; stops at the length limit."""
    resampler = None
    blocks: list[np.ndarray] = []
    total = 0
    max_samples = int(limits.max_seconds * SAMPLE_RATE)
    try:
        for frame in container.decode(stream):
            if frame.format.name.startswith(("flt", "dbl")) and not _finite(frame):
                raise InvalidAudio("audio contains NaN or infinite samples")
            resampler = resampler or resampler_for(frame)
            for out in resampler.resample(frame):
                blocks.append(out.to_ndarray())
                total += blocks[-1].shape[1]
            if total > max_samples:
                raise InvalidAudio(too_long(total / SAMPLE_RATE, limits, at_least=True))
    except av.FFmpegError as exc:
        raise InvalidAudio(
            f"audio is corrupt or truncated after {total / SAMPLE_RATE:.2f} s of "
            f"{container.format.name}/{stream.codec_context.name}: {exc}"
        ) from exc
    return blocks


def check_length(declared: float | None, decoded_s: float, container: str) -> None:
    if declared and decoded_s + DURATION_TOLERANCE_S < declared:
        raise InvalidAudio(
            f"audio is truncated: the {container} stream declares {declared:.2f} s "
            f"but only {decoded_s:.2f} s could be decoded"
        )


def _flush(resampler: av.AudioResampler, frames: list) -> np.ndarray:
    """Concatenates resampled output, including what the resampler still holds."""
    tail = [f.to_ndarray()[0] for f in resampler.resample(None)]
    parts = [f if isinstance(f, np.ndarray) else f.to_ndarray()[0] for f in frames] + tail
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def _finite(frame) -> bool:
    return bool(np.isfinite(frame.to_ndarray()).all())


def check_wav_header(content: bytes) -> None:
    """Catches a WAV file cut short: PyAV trusts the file size, not the header."""
    if not (content.startswith(b"RIFF") and content[8:12] == b"WAVE"):
        return
    offset = 12
    while offset + 8 <= len(content):
        chunk_id, size = (
            content[offset : offset + 4],
            struct.unpack_from("<I", content, offset + 4)[0],
        )
        if chunk_id == b"data":
            available = len(content) - offset - 8
            # Writers that stream WAV (espeak-ng, sox, browsers) put 0 or a size near 2 or
            # 4 GiB there, meaning "unknown length": nothing to compare against.
            if 0 < size < STREAMED_WAV_SIZE and available < size:
                raise InvalidAudio(
                    f"audio is truncated: the WAV header declares {size} bytes of samples "
                    f"but only {available} bytes follow"
                )
            return
        offset += 8 + size + (size & 1)


def check_samples(samples: np.ndarray) -> None:
    if samples.size == 0:
        raise InvalidAudio("audio decoded to zero samples")
    if not np.isfinite(samples).all():
        raise InvalidAudio("audio contains NaN or infinite samples")


def too_long(seconds: float, limits: AudioLimits, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return (
        f"audio is {more}{seconds:.1f} s long, over this service's limit of "
        f"{limits.max_seconds:.0f} s for one request"
    )
