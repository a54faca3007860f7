"""Settings every CTC service shares; hausa_stt and arabic_words subclass with their prefix,
their default model and their language."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from services.core.settings import ServiceSettings


class CtcSettings(ServiceSettings):
    language: str = Field(description="Language served, as a BCP-47 primary subtag.")
    compute_type: str = Field(
        "auto",
        pattern="^(auto|float16|float32)$",
        description=(
            "Precision: auto (float16 on GPU, float32 on CPU), float16 or float32. float16 "
            "falls back to float32 when it fails to load or run, or gives non-finite logits."
        ),
    )
    chunk_seconds: float = Field(
        0.0,
        ge=0,
        description=(
            "Window the model hears at once; longer audio is cut into overlapping windows. "
            "0: chosen from free GPU memory on GPU (20, 25 or 30 s), 20 s on CPU."
        ),
    )
    stride_seconds: float = Field(
        2.5,
        gt=0,
        description=(
            "Context on each side of a window that is heard but not kept when the windows' "
            "logits are merged, so no word at a join is cut."
        ),
    )
    torch_compile: str = Field(
        "auto",
        pattern="^(auto|on|off)$",
        description="torch.compile the model: auto (on for CUDA, off on CPU), on or off.",
    )
    candidate_temperature: float = Field(
        1.0,
        gt=0,
        description=(
            "Temperature of candidate-phrase confidences: above 1 softens them, below 1 "
            "sharpens them; fit it on labelled recordings to calibrate."
        ),
    )

    @model_validator(mode="after")
    def _window_longer_than_its_context(self) -> Self:
        if self.chunk_seconds and self.chunk_seconds <= 2 * self.stride_seconds:
            raise ValueError(
                f"chunk_seconds ({self.chunk_seconds}) must be more than twice "
                f"stride_seconds ({self.stride_seconds}), or 0 for automatic"
            )
        return self
