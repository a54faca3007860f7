"""Whisper on a window fitted to the audio, for decodes where latency comes first.

Whisper encodes 30 s of features whatever the audio's length: for a 4-s utterance on a CPU
that is most of the decode. Encoding the audio plus a margin instead cuts the encoder's work
in proportion (4 s + 3 s of margin: about a quarter). Whisper was trained on full windows,
and on a short one it can loop, repeating its text past the end of the speech. Four things
keep that in check, measured on cuts of the English test clips: a margin of silence after
the audio (with 3 s no cut of 2 s and more looped, where with 1 s one in six did); a window
of 8 s at least (cuts of 0.5 to 1.5 s looped one time in fourteen on a bare 3-s margin,
never on 8 s); a token budget in proportion to the audio; and a check of the result. A
decode that fails the check is done again on the full window.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np
from faster_whisper import WhisperModel

from services.core.backend import SAMPLE_RATE
from services.core.batching import Batcher
from services.whisper_en.batched import BatchedWhisper

FULL_WINDOW_FRAMES = 3000  # 30 s of features at 100 frames a second
FRAMES_PER_SECOND = 100
MARGIN_S = 3.0
MIN_WINDOW_S = 8.0
# Bounds of real speech, well above any reading in the test clips (about 3 words a second).
MAX_WORDS_PER_S = 4.5
MAX_TOKENS_PER_S = 6
MIN_TOKENS = 10
# Whisper's own sign of a repetition loop (its temperature fallback uses the same threshold).
MAX_COMPRESSION_RATIO = 2.4
# Steps that window lengths, length limits and stream prompts are rounded to, so that the
# decodes of concurrent streams are often alike enough to share batched passes.
FRAME_STEP = 200  # 2 s of features
LENGTH_STEP = 32  # tokens
CONTEXT_STEP, CONTEXT_TOKENS = 16, 48


class FittedWhisperModel(WhisperModel):
    """A WhisperModel whose encoder sees only the first frames of its window, inside
    `fitted(frames)`. The limit is per thread: each worker thread runs its own decode. Given
    a batcher, its passes over encoder outputs batch with other threads' (`BatchedWhisper`)."""

    def __init__(self, *args, batcher: Batcher | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self._batched: BatchedWhisper | None = None
        if batcher is not None:
            sot = self.hf_tokenizer.token_to_id("<|startoftranscript|>")
            self._batched = BatchedWhisper(self.model, batcher, sot)
            self.model = self._batched  # the library's calls with encoder outputs batch

    @contextlib.contextmanager
    def fitted(self, frames: int) -> Iterator[None]:
        self._local.frames = frames
        try:
            yield
        finally:
            self._local.frames = None

    def encode(self, features: np.ndarray):
        frames = getattr(self._local, "frames", None)
        if frames is not None:
            features = features[..., :frames]
        if self._batched is None:
            return super().encode(features)
        return self._batched.encode_features(
            features[np.newaxis] if features.ndim == 2 else features
        )


def fitted_frames(samples: int) -> int | None:
    """Encoder frames for the audio and its margin, rounded up to whole steps of
    `FRAME_STEP` (so that the windows of concurrent streams share batched passes more often);
    None when that would be the full window anyway."""
    frames = samples * FRAMES_PER_SECOND // SAMPLE_RATE + 1 + int(MARGIN_S * FRAMES_PER_SECOND)
    frames = max(-(-frames // FRAME_STEP) * FRAME_STEP, int(MIN_WINDOW_S * FRAMES_PER_SECOND))
    return frames if frames < FULL_WINDOW_FRAMES else None


def token_budget(seconds: float) -> int:
    return int(seconds * MAX_TOKENS_PER_S) + MIN_TOKENS


def new_tokens(prompt_tokens: int, budget: int, max_length: int) -> int:
    """The decoder's room after a prompt: the budget, stretched so that prompt and budget end
    on a whole step of `LENGTH_STEP` (decodes batch only with the same length limit), within
    the model's context."""
    total = min(max_length, -(-(prompt_tokens + budget) // LENGTH_STEP) * LENGTH_STEP)
    return max(budget, total - prompt_tokens)


def context_tokens(tokens: list[int]) -> list[int]:
    """The last of a stream's context tokens, in whole steps of `CONTEXT_STEP` and at most
    `CONTEXT_TOKENS`: decodes batch only when their prompts are equally long."""
    keep = min(len(tokens), CONTEXT_TOKENS) // CONTEXT_STEP * CONTEXT_STEP
    return tokens[len(tokens) - keep :] if keep else []


def looped(segments: list, seconds: float, max_tokens: int) -> bool:
    """Whether a fitted decode shows the signs of a loop: more words than anyone says in
    the time, text that compresses like a repetition, or a decode cut off by its budget
    (`max_tokens`: the budget and the forced prefix, which the tokens include)."""
    words = sum(len(s.text.split()) for s in segments)
    tokens = sum(len(s.tokens) for s in segments)
    return (
        words > MAX_WORDS_PER_S * seconds + 3
        or tokens >= max_tokens
        or any(s.compression_ratio > MAX_COMPRESSION_RATIO for s in segments)
    )
