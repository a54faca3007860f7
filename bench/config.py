"""One place that says how both sides are configured, so the library and the service always
run the same model with the same options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.core.vad import VadSettings
from services.whisper_en.settings import WhisperSettings

LANGUAGE = "en"
DEVICE = "cpu"
COMPUTE_TYPE = "int8"
BEAM_SIZE = 5


def service_settings(model_dir: Path, cpu_threads: int, **overrides) -> WhisperSettings:
    """whisper_en settings on free loopback ports; `overrides` set the limits under test."""
    return WhisperSettings(
        model=str(model_dir),
        grpc_port=0,
        http_port=0,
        device=DEVICE,
        compute_type=COMPUTE_TYPE,
        cpu_threads=cpu_threads,
        beam_size=BEAM_SIZE,
        **overrides,
    )


def library_vad_parameters(settings: WhisperSettings) -> dict:
    """faster-whisper's VadOptions set to what the service's detector uses, so both sides drop
    the same silence (the library's own defaults keep longer pauses and more padding)."""
    return {
        "threshold": settings.vad_threshold,
        "min_silence_duration_ms": settings.vad_min_silence_ms,
        "speech_pad_ms": settings.vad_speech_pad_ms,
        "min_speech_duration_ms": VadSettings().min_speech_ms,
        "max_speech_duration_s": settings.max_chunk_seconds,
    }


@dataclass(frozen=True)
class Plan:
    """What one run measures, and how much of it (from the command line)."""

    model_dir: Path
    audio_dir: Path
    quick: bool
    reps: int  # per clip up to 30 s
    long_reps: int  # for the 200 s clip
    cpu_threads: int  # latency, cache and rejection sections
    clients: int
    requests: int  # per clip and side, in the throughput section
    throughput_cpu_threads: int
    cache_calls: int
    reject_calls: int
