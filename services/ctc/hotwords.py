"""CTC beam search that favours given words (Google's `speech_contexts[].boost`, Riva's
boosted words), in place of the greedy path of `decoding.best_path`.

The search is ctc-beam-decoder's, pyctcdecode's algorithm with the same interface (pyctcdecode
itself pins numpy below 2): a prefix beam search without a language model, in which a beam
that spells a hotword, or the start of one, gains `weight` per character spelled. The winning
text is then aligned to the frames (`alignment.align`) and returned as the tokens
`decoding.words` times and scores, so words from a boosted search carry the same times and
acoustic confidences as greedy ones: a word the boost chose against the audio shows a low
confidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ctc_beam_decoder import build_ctcdecoder

from services.core.errors import InvalidConfig
from services.ctc.alignment import align
from services.ctc.decoding import Token
from services.ctc.text import TextRules
from services.ctc.vocabulary import Vocabulary

BEAM_WIDTH = 32


class HotwordDecoder:
    """One model's decoder. It needs a vocabulary of single characters (the wav2vec2 kind),
    since the search gives back text, which is mapped to outputs character by character."""

    def __init__(self, vocab: Vocabulary, rules: TextRules):
        self._vocab, self._rules = vocab, rules
        breaks = [i for i in range(len(vocab.tokens)) if vocab.is_break(i)]
        if not breaks:
            raise ValueError("the vocabulary has no word separator")
        self._break = vocab.delimiter if vocab.delimiter is not None else breaks[0]
        # The search's columns: the outputs written as nothing (blank, <s>, <unk>) summed into
        # one blank, each written output, and the word separators summed into one space.
        self._silent = [i for i, t in enumerate(vocab.tokens) if not t and i not in breaks]
        self._written = [i for i, t in enumerate(vocab.tokens) if t and i not in breaks]
        self._breaks = breaks
        labels = [vocab.tokens[i] for i in self._written]
        if any(len(label) != 1 for label in labels) or len(set(labels)) != len(labels):
            raise ValueError("hotword decoding needs a vocabulary of distinct single characters")
        self._ids = dict(zip(labels, self._written, strict=True))
        self._decoder = build_ctcdecoder(["", *labels, " "])

    def hotwords(self, phrases: Sequence[str]) -> list[str]:
        """Phrases as the model spells them (its case, its letters); unwritable ones refused."""
        spelled = []
        for phrase in phrases:
            words = self._vocab.spell(phrase, self._rules)
            spelled.append(
                " ".join("".join(self._vocab.tokens[i] for i in ids) for _, ids in words)
            )
        return spelled

    def decode(
        self,
        log_probs: np.ndarray,
        phrases: Sequence[str],
        weight: float,
        beam_width: int = BEAM_WIDTH,
    ) -> list[Token]:
        """The best path's tokens, as `decoding.best_path` gives them, with `phrases` favoured
        by `weight` (0: a plain beam search)."""
        if weight < 0:
            raise InvalidConfig(f"a phrase boost must be 0 or more, got {weight:g}")
        text = self._decoder.decode(
            self._merged(log_probs),
            beam_width=beam_width,
            hotwords=self.hotwords(phrases) if weight else None,
            hotword_weight=weight,
        )
        labels = self._labels(text)
        if not labels:
            return []
        spans = align(log_probs, tuple(labels), self._vocab.blank)
        return [
            Token(label, first, last) for label, (first, last) in zip(labels, spans, strict=True)
        ]

    def _merged(self, log_probs: np.ndarray) -> np.ndarray:
        blank = np.logaddexp.reduce(log_probs[:, self._silent], axis=1)
        space = np.logaddexp.reduce(log_probs[:, self._breaks], axis=1)
        columns = [blank, log_probs[:, self._written], space]
        return np.column_stack(columns).astype(np.float32)

    def _labels(self, text: str) -> list[int]:
        words = [[self._ids[char] for char in word] for word in text.split()]
        labels: list[int] = []
        for word in words:
            if labels:
                labels.append(self._break)
            labels.extend(word)
        return labels
