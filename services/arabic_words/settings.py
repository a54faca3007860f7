"""arabic_words settings: the CTC settings, read from `ARABIC_WORDS_*`, serving Arabic."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.ctc.settings import CtcSettings


class ArabicWordsSettings(CtcSettings):
    model_config = SettingsConfigDict(env_prefix="ARABIC_WORDS_")

    model: str = Field(
        "jonatasgrosman/wav2vec2-large-xlsr-53-arabic",
        description="A transformers CTC model: a local folder or a hub id.",
    )
    language: str = Field("ar", description="Language served, as a BCP-47 primary subtag.")
    # Its clips are a word to a short phrase: minutes of audio are a mistake to refuse early.
    max_audio_seconds: float = Field(
        120.0, gt=0, description="Longest audio accepted by Recognize, in seconds."
    )
