"""whisper_en settings: the core's, read from `WHISPER_EN_*`, plus Whisper's own options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.core.settings import ServiceSettings


class WhisperSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WHISPER_EN_")

    model: str = Field(
        "base",
        description=(
            "A CTranslate2 Whisper folder, a faster-whisper size name or a hub id. "
            "'base' uses the bundled Whisper base model when its packages are installed."
        ),
    )
    model_cache_dir: Path = Field(
        Path("~/.cache/stt-suite").expanduser(),
        description="Where the bundled model is assembled and hub models are downloaded.",
    )
    languages: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Languages accepted (comma-separated); empty: every language the model knows.",
    )
    beam_size: int = Field(5, ge=1, le=16, description="Beam width when a request sets none.")
    condition_on_previous_text: bool = Field(
        False,
        description="Feed each window's text to the next; off avoids repetition loops.",
    )

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        if isinstance(value, str):
            return [code.strip().lower() for code in value.split(",") if code.strip()]
        return value
