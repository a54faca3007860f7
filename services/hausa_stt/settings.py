"""hausa_stt settings: the CTC settings, read from `HAUSA_STT_*`, serving Hausa."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.ctc.settings import CtcSettings


class HausaSettings(CtcSettings):
    model_config = SettingsConfigDict(env_prefix="HAUSA_STT_")

    model: str = Field(
        "CLEAR-Global/w2v-bert-2.0-hausa_100_400h_yourtts",
        description="A transformers CTC model: a local folder or a hub id.",
    )
    language: str = Field("ha", description="Language served, as a BCP-47 primary subtag.")
