"""Audio and routers for the conformance tests of the drop-in APIs (what Google's samples and
Riva's scripts send): speech made with espeak-ng in any language, two-party calls with one
party on each channel, silence, and a router whose `*` route sends every other language to
Whisper, as `stt up` and the chart route by default."""

from __future__ import annotations

import io
import wave

import numpy as np

from services.router.settings import RouterSettings
from tests.support import espeak

RATE = 16_000
# Route patterns as `stt up` has them: English to whisper_en, and any other language too.
STAR_ROUTES = "en=whisper_en;*=whisper_en"


def star_router_settings(whisper_target: str, **overrides) -> RouterSettings:
    return RouterSettings(
        grpc_port=0,
        http_port=0,
        backends={"whisper_en": f"dns:///{whisper_target}"},
        routes=STAR_ROUTES,
        health_interval_s=0.2,
        **overrides,
    )


def said(text: str, voice: str = "en-us", rate_wpm: int = 150) -> np.ndarray:
    """`text` spoken by espeak-ng, as 16 kHz int16 samples."""
    import av

    wav = espeak(text, voice=voice, rate_wpm=rate_wpm)
    with av.open(io.BytesIO(wav)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        frames += resampler.resample(None)
    return np.concatenate([f.to_ndarray()[0] for f in frames]).astype("<i2")


def wav(*channels: np.ndarray) -> bytes:
    """16 kHz 16-bit WAV with the given channels (padded to one length)."""
    length = max(len(c) for c in channels)
    padded = [np.pad(c, (0, length - len(c))) for c in channels]
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(len(channels))
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes(np.stack(padded, axis=1).astype("<i2").tobytes())
    return out.getvalue()


def call(first: str, second: str, gap_s: float = 0.8) -> tuple[bytes, float]:
    """A two-party call: `first` said on channel 1, then after a gap `second` on channel 2
    (each channel silent while the other speaks); and when the second party starts."""
    agent, customer = said(first), said(second)
    start = len(agent) + int(gap_s * RATE)
    left = np.pad(agent, (0, start + len(customer) - len(agent)))
    right = np.pad(customer, (start, 0))
    return wav(left, right), start / RATE


def silence(seconds: float = 2.0) -> bytes:
    return wav(np.zeros(int(seconds * RATE), dtype="<i2"))
