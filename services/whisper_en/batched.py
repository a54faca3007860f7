"""Whisper's model passes through the core's batcher: the encoder, the decoder (`generate`),
word alignment and language detection of concurrent decodes run as batches.

faster-whisper's own sequential decode (`WhisperModel.transcribe`: windows, prompts, the
temperature fallback, word timestamps) runs unchanged for each piece, on its own thread; only
its calls into CTranslate2 meet. `BatchedWhisper` stands in for the CTranslate2 model the
library calls: each call waits in the batcher with calls of the same shape and options, and
one CTranslate2 call serves them all, as faster-whisper's `BatchedInferencePipeline` calls
`generate` over a batch of windows. Encoder outputs live on the host between passes
(`Encoded`), so that passes of different requests can be stacked.

CTranslate2 decodes each window of a batch on its own (its beam search keeps the hypotheses of
every batch entry apart), so a piece's tokens, scores and alignments are those it would get
alone: tests/test_whisper_batching.py checks that they are equal.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import ctranslate2
import numpy as np

from services.core.batching import Batcher


class Encoded:
    """Encoder outputs of one caller's windows, on the host: (windows, frames, width)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    @property
    def windows(self) -> int:
        return self.array.shape[0]

    @property
    def key(self) -> Hashable:
        return self.array.shape[1:], self.array.dtype.str


class BatchedWhisper:
    """The parts of `ctranslate2.models.Whisper` that faster-whisper calls with an encoder
    output, batched across threads; everything else is the model's own."""

    def __init__(self, model: ctranslate2.models.Whisper, batcher: Batcher, sot: int):
        self._model = model
        self._batcher = batcher
        self._sot = sot  # the start-of-transcript token, which must line up across a batch
        batcher.register("encode", self._encode_batch)
        batcher.register("generate", self._generate_batch)
        batcher.register("align", self._align_batch)
        batcher.register("language", self._language_batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode_features(self, features: np.ndarray) -> Encoded:
        """Encoder outputs of (windows, mels, frames) features."""
        key = features.shape[1:], features.dtype.str
        return self._batcher.run("encode", key, np.ascontiguousarray(features))

    def generate(self, encoder_output: Encoded, prompts: list[list[int]], **options) -> list:
        # CTranslate2 needs the start of transcript at one position in every prompt of a batch.
        starts = {prompt.index(self._sot) for prompt in prompts}
        key = encoder_output.key, tuple(starts), _frozen(options)
        return self._batcher.run("generate", key, (encoder_output, prompts, options))

    def align(
        self,
        encoder_output: Encoded,
        start_sequence: list[int],
        text_tokens: list[list[int]],
        num_frames,
        median_filter_width: int = 7,
    ) -> list:
        frames = [num_frames] * len(text_tokens) if isinstance(num_frames, int) else num_frames
        # Only alignments of one shape batch: CTranslate2 pads the others, and its time warping
        # over padded attention can move a word's edge by a frame.
        shape = tuple(len(tokens) for tokens in text_tokens), tuple(frames)
        key = encoder_output.key, tuple(start_sequence), median_filter_width, shape
        item = (encoder_output, start_sequence, text_tokens, list(frames), median_filter_width)
        return self._batcher.run("align", key, item)

    def detect_language(self, encoder_output: Encoded) -> list:
        return self._batcher.run("language", encoder_output.key, encoder_output)

    def pass_over(self, windows: int, prompt: list[int], beam_size: int, max_length: int) -> None:
        """One encoder and decoder pass over `windows` full windows of noise, outside the
        queue: what the GPU memory bound measures at warm-up."""
        rng = np.random.default_rng(0)
        mels = self._model.n_mels
        features = (0.1 * rng.standard_normal((windows, mels, 3000))).astype(np.float32)
        encoded = self._encode_batch([features])[0]
        options = dict(beam_size=beam_size, max_length=max_length)
        self._generate_batch([(encoded, [prompt] * windows, options)])

    def _encode_batch(self, items: list[np.ndarray]) -> list[Encoded]:
        features = ctranslate2.StorageView.from_array(_stack(items))
        # On the host, whatever the device: the next pass may be batched with other windows.
        output = np.array(self._model.encode(features, to_cpu=True))
        return [Encoded(part) for part in _split(output, [len(item) for item in items])]

    def _generate_batch(self, items: list[tuple[Encoded, list, dict]]) -> list[list]:
        options = items[0][2]
        prompts = [prompt for _, batch, _ in items for prompt in batch]
        results = self._model.generate(_storage(item[0] for item in items), prompts, **options)
        return _split(results, [len(batch) for _, batch, _ in items])

    def _align_batch(self, items: list[tuple]) -> list[list]:
        start, width = items[0][1], items[0][4]
        tokens = [t for item in items for t in item[2]]
        frames = [f for item in items for f in item[3]]
        results = self._model.align(
            _storage(item[0] for item in items), start, tokens, frames, median_filter_width=width
        )
        return _split(results, [len(item[2]) for item in items])

    def _language_batch(self, items: list[Encoded]) -> list[list]:
        results = self._model.detect_language(_storage(items))
        return _split(results, [item.windows for item in items])


def _storage(encoded) -> ctranslate2.StorageView:
    return ctranslate2.StorageView.from_array(_stack([e.array for e in encoded]))


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.ascontiguousarray(np.concatenate(arrays))


def _split(values: Sequence, counts: list[int]) -> list:
    parts, start = [], 0
    for count in counts:
        parts.append(values[start : start + count])
        start += count
    return parts


def _frozen(value: Any) -> Hashable:
    """Generation options as a key: lists (suppressed tokens) become tuples."""
    if isinstance(value, dict):
        return tuple(sorted((name, _frozen(v)) for name, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value
