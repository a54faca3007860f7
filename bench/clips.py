"""The benchmark clips, as encoded bytes in memory: real speech read from ../shared/audio/.

The ~30 s and ~200 s clips are cut and joined from long_concat_en.flac at run time and encoded
as FLAC, so nothing is written to the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from tests.support import encode

RATE = 16_000
JFK = "en/jfk.flac"
SHORT = "en/mr_quilter_picovoice_leopard.wav"
LONG_SOURCE = "en/long_concat_en.flac"
MEDIUM_S = 30.0
LONG_S = 200.0


@dataclass(frozen=True)
class Clip:
    name: str
    content: bytes
    seconds: float


def load_clips(audio_dir: Path, include_long: bool) -> list[Clip]:
    """jfk (11 s), a 5.9 s clip, a 30 s clip and (unless left out) a 200 s clip."""
    clips = [_file_clip(audio_dir, SHORT, "quilter 5.9 s"), _file_clip(audio_dir, JFK, "jfk 11 s")]
    source = decode(audio_dir / LONG_SOURCE)
    clips.append(_made_clip(f"concat {MEDIUM_S:.0f} s", source[: int(MEDIUM_S * RATE)]))
    if include_long:
        clips.append(_made_clip(f"concat {LONG_S:.0f} s", _extend(source, LONG_S)))
    return clips


def long_clip(audio_dir: Path) -> Clip:
    """long_concat_en.flac as it is (127 s): keeps a service busy for a while."""
    return _file_clip(audio_dir, LONG_SOURCE, "long_concat 127 s")


def decode(path: Path) -> np.ndarray:
    """Any audio file as 16 kHz mono float32."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    parts = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts.extend(out.to_ndarray()[0] for out in resampler.resample(frame))
    parts.extend(out.to_ndarray()[0] for out in resampler.resample(None))
    return np.concatenate(parts).astype(np.float32, copy=False)


def _file_clip(audio_dir: Path, relative: str, name: str) -> Clip:
    path = audio_dir / relative
    return Clip(name, path.read_bytes(), len(decode(path)) / RATE)


def _made_clip(name: str, samples: np.ndarray) -> Clip:
    return Clip(name, encode(samples, RATE, "flac", "flac"), len(samples) / RATE)


def _extend(samples: np.ndarray, seconds: float) -> np.ndarray:
    """The clip followed by its own beginning, up to `seconds`."""
    missing = max(0, int(seconds * RATE) - len(samples))
    return np.concatenate([samples, samples[:missing]])
