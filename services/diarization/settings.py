"""diarization settings: the model server's, read from `DIARIZATION_*`, plus how speakers are
told apart (windows, clustering, smoothing) and the bounds on their count."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.core.names import JOB_MAX_AUDIO_SECONDS
from services.core.settings import ModelSettings

# The embedded default: Resemblyzer's encoder, whose weights its wheel ships.
EMBEDDED = "resemblyzer"


class DiarizationSettings(ModelSettings):
    model_config = SettingsConfigDict(env_prefix="DIARIZATION_")

    model: str = Field(
        EMBEDDED,
        description=(
            "'resemblyzer': the embedded default (Resemblyzer speaker embeddings over Silero "
            "VAD speech, clustered with scikit-learn). Else a pyannote.audio pipeline: a local "
            "folder or config.yaml, or a hub id (needs the `pyannote` extra)."
        ),
    )
    max_audio_bytes: int = Field(
        256 * 1024 * 1024, gt=0, description="Largest audio content accepted, in bytes."
    )
    max_audio_seconds: float = Field(
        JOB_MAX_AUDIO_SECONDS,
        gt=0,
        description="Longest audio accepted in one request, in seconds (the longest job's).",
    )
    vad_min_silence_ms: int = Field(
        300, ge=0, description="Pause length that ends a speech span (speakers change at pauses)."
    )
    vad_speech_pad_ms: int = Field(100, ge=0, description="Audio kept on each side of speech.")
    max_speakers: int = Field(
        20, ge=1, description="Most speakers a request may ask for (max_speaker_count)."
    )
    default_max_speakers: int = Field(
        8, ge=1, description="Most speakers found when a request leaves max_speaker_count 0."
    )
    window_step_s: float = Field(
        0.4,
        ge=0.1,
        le=1.6,
        description="Embedded: time between the starts of two 1.6 s embedding windows.",
    )
    distance_threshold: float = Field(
        0.4,
        gt=0,
        lt=2,
        description="Embedded: cosine distance between groups of windows above which they are "
        "different speakers (estimates the count when a request does not fix it).",
    )
    min_turn_s: float = Field(
        1.0, ge=0, description="Embedded: a shorter turn between two others joins its neighbour."
    )
    max_cluster_windows: int = Field(
        3000,
        ge=10,
        description="Embedded: windows clustered at once; past it an even subsample is "
        "clustered and the rest join the nearest speaker (bounds memory on long audio).",
    )
    hf_token: str = Field(
        "", description="pyannote: a Hugging Face token for a gated hub pipeline; empty: none."
    )

    @model_validator(mode="after")
    def _default_within_bounds(self) -> DiarizationSettings:
        if self.default_max_speakers > self.max_speakers:
            raise ValueError(
                f"DIARIZATION_DEFAULT_MAX_SPEAKERS ({self.default_max_speakers}) must not "
                f"exceed DIARIZATION_MAX_SPEAKERS ({self.max_speakers})"
            )
        return self
