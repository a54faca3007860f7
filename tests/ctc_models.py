"""Tiny CTC models of the two architectures the CTC services run, made at test time.

Each is a real transformers model (random weights, a few layers) with a real
Wav2Vec2CTCTokenizer vocabulary and the architecture's own feature extractor, saved with
`save_pretrained` so the services load it exactly as they load a hub checkpoint.

Random weights give near-uniform outputs, unlike a trained CTC model, which is sure of most
frames, says blank on most of them and separates words now and then. The output layer is
therefore scaled up, and its biases set so that blank and the separator win their usual share
of frames on a probe signal: what the models say is still noise, but decoding, timings and
scoring behave as they do on a trained model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import (
    SeamlessM4TFeatureExtractor,
    Wav2Vec2BertConfig,
    Wav2Vec2BertForCTC,
    Wav2Vec2BertProcessor,
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2Processor,
)
from transformers.utils import logging as hf_logging

HAUSA_LETTERS = "abcdefghijklmnorstuwyzɓɗƙ'"
ARABIC_LETTERS = "ءآأؤإئابةتثجحخدذرزسشصضطظعغفقكلمنهوىي"
SHARPEN = 60.0
# Shares of frames a trained model gives to blank, and to the word separator.
BLANK_SHARE, SEPARATOR_SHARE = 0.6, 0.06
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
# Four small convolutions with wav2vec2's overall stride (320 samples, 20 ms frames).
TINY_CONV = dict(
    conv_dim=(32, 32, 32, 32),
    conv_kernel=(10, 4, 4, 4),
    conv_stride=(5, 4, 4, 4),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
)


def vocabulary(letters: str, blank_first: bool) -> dict[str, int]:
    """A CTC vocabulary as fine-tuning scripts write it: letters, `|`, `[UNK]` and `[PAD]`
    (the blank), with the blank first or last."""
    tokens = [*letters, "|", "[UNK]"]
    tokens = ["[PAD]", *tokens] if blank_first else [*tokens, "[PAD]"]
    return {token: i for i, token in enumerate(tokens)}


def tokenizer(folder: Path, vocab: dict[str, int]) -> Wav2Vec2CTCTokenizer:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.json"
    path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    return Wav2Vec2CTCTokenizer(
        str(path), unk_token="[UNK]", pad_token="[PAD]", word_delimiter_token="|"
    )


def w2v_bert(folder: Path, letters: str = HAUSA_LETTERS, local: bool = False, **size) -> Path:
    """Wav2Vec2BertForCTC with SeamlessM4TFeatureExtractor (input_features), 40 ms frames.
    `size` overrides the tiny sizes (hidden_size, num_hidden_layers, ...)."""
    vocab = vocabulary(letters, blank_first=True)
    sizes = {**TINY, **size}
    config = Wav2Vec2BertConfig(
        **sizes,
        feature_projection_input_dim=160,
        conv_depthwise_kernel_size=7,
        add_adapter=True,
        num_adapter_layers=1,
        adapter_stride=2,
        output_hidden_size=sizes["hidden_size"],
        vocab_size=len(vocab),
        pad_token_id=vocab["[PAD]"],
    )
    processor = Wav2Vec2BertProcessor(
        feature_extractor=SeamlessM4TFeatureExtractor(), tokenizer=tokenizer(folder, vocab)
    )
    return _save(Wav2Vec2BertForCTC, config, processor, folder, vocab, local)


def wav2vec2(folder: Path, letters: str = ARABIC_LETTERS, local: bool = False, **size) -> Path:
    """Wav2Vec2ForCTC with Wav2Vec2FeatureExtractor (input_values), 20 ms frames.
    `size` overrides the tiny sizes, convolutions included."""
    vocab = vocabulary(letters, blank_first=False)
    config = Wav2Vec2Config(
        **{**TINY, **TINY_CONV, **size},
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        vocab_size=len(vocab),
        pad_token_id=vocab["[PAD]"],
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16_000, do_normalize=True, return_attention_mask=True
    )
    processor = Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer(folder, vocab))
    return _save(Wav2Vec2ForCTC, config, processor, folder, vocab, local)


def _save(model_class, config, processor, folder: Path, vocab: dict, local: bool) -> Path:
    hf_logging.disable_progress_bar()
    torch.manual_seed(1234)
    model = model_class(config).eval()
    with torch.no_grad():
        if local:
            mute_attention(model)
        model.lm_head.weight.mul_(SHARPEN)
        model.lm_head.bias.mul_(SHARPEN)
        model.lm_head.bias[vocab["[UNK]"]] = -1e4  # trained models all but never say it
        _favour(model, processor, vocab["[PAD]"], BLANK_SHARE)
        _favour(model, processor, vocab["|"], SEPARATOR_SHARE / (1 - BLANK_SHARE), vocab["[PAD]"])
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _favour(model, processor, token: int, share: float, leave: int | None = None) -> None:
    """Raises `token`'s bias until it wins `share` of the probe's frames (of those that
    `leave` does not win, when given)."""
    logits = _probe_logits(model, processor)
    if leave is not None:
        logits = logits[logits.argmax(-1) != leave]
    rivals = logits.clone()
    rivals[:, token] = -torch.inf
    margin = rivals.max(-1).values - logits[:, token]
    model.lm_head.bias[token] += torch.quantile(margin, share) + 1e-3


def _probe_logits(model, processor) -> torch.Tensor:
    """Logits for 6 s of gliding tones in noise: sound with structure, made the same each time."""
    rng = np.random.default_rng(7)
    t = np.arange(6 * 16_000) / 16_000
    glide = np.sin(2 * np.pi * (200 + 150 * np.sin(2 * np.pi * 0.7 * t)) * t)
    probe = 0.3 * glide * (np.sin(2 * np.pi * 1.5 * t) > 0) + 0.02 * rng.standard_normal(len(t))
    name = processor.feature_extractor.model_input_names[0]
    inputs = processor.feature_extractor(
        probe.astype(np.float32), sampling_rate=16_000, return_tensors="pt"
    )
    return model(**{name: inputs[name]}).logits[0]


def mute_attention(model: torch.nn.Module) -> None:
    """Zeroes every attention output, so each frame hears only its neighbours.

    With global attention, a window's frames differ a little from the same frames heard in
    one pass, which a random model turns into different letters. Without it, merged windows
    must equal one pass exactly, so any word doubled or dropped at a join is the merge's fault.
    """
    for name, module in model.named_modules():
        if name.endswith(("attention.out_proj", "self_attn.linear_out")):
            module.weight.zero_()
            module.bias.zero_()
