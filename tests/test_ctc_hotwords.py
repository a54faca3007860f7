"""Hotword beam search for the CTC services (`services.ctc.hotwords`), on synthetic
log-probabilities over a wav2vec2-style vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from services.core.errors import InvalidConfig
from services.ctc import decoding
from services.ctc.hotwords import HotwordDecoder
from services.ctc.text import TextRules
from services.ctc.vocabulary import Vocabulary

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ'"
# <pad> (the blank), <s>, </s>, <unk>: written as nothing; "|" separates words.
VOCAB = Vocabulary(("", "", "", "", "|", *LETTERS), blank=0, delimiter=4)
RULES = TextRules()
FRAME_S = 0.02


def log_probs(frames: list[dict[str, float]], floor: float = 1e-3) -> np.ndarray:
    """One row a frame: the given outputs' probabilities ("_" blank, "<s>", "|" or a letter),
    every other output `floor`, each row normalised."""
    index = {"_": 0, "<s>": 1, "|": 4, **{c: 5 + i for i, c in enumerate(LETTERS)}}
    rows = np.full((len(frames), len(VOCAB.tokens)), floor)
    for row, frame in zip(rows, frames, strict=True):
        for name, p in frame.items():
            row[index[name]] = p
    rows /= rows.sum(axis=1, keepdims=True)
    return np.log(rows).astype(np.float32)


def spoken(word: str, last: dict[str, float] | None = None) -> list[dict[str, float]]:
    """A clear letter then a blank for each letter; `last` replaces the last letter's frame."""
    frames = []
    for char in word:
        frames += [{char: 0.9}, {"_": 0.9}]
    if last:
        frames[-2] = last
    return frames


def text(tokens, lp) -> str:
    timed = decoding.words(tokens, lp, VOCAB, RULES, FRAME_S, len(lp) * FRAME_S)
    return " ".join(w.word.text for w in timed)


# "Kwame", its last vowel heard a little more like O than E.
KWAME = spoken("KWAME", last={"O": 0.55, "E": 0.4})


def test_a_boosted_word_wins_where_the_plain_search_misses_it():
    lp = log_probs([{"_": 0.9}, *spoken("HELLO"), {"|": 0.9}, *KWAME, {"_": 0.9}])
    decoder = HotwordDecoder(VOCAB, RULES)
    assert text(decoding.best_path(lp, VOCAB.blank), lp) == "HELLO KWAMO"
    assert text(decoder.decode(lp, [], 0.0), lp) == "HELLO KWAMO"
    assert text(decoder.decode(lp, ["Kwame"], 0.0), lp) == "HELLO KWAMO"
    assert text(decoder.decode(lp, ["Kwame"], 10.0), lp) == "HELLO KWAME"


def test_a_boosted_word_keeps_its_times_and_shows_the_doubt_in_its_confidence():
    lp = log_probs([*KWAME, {"_": 0.9}])
    boosted = decoding.words(
        HotwordDecoder(VOCAB, RULES).decode(lp, ["kwame"], 10.0), lp, VOCAB, RULES, FRAME_S, 1.0
    )
    plain = decoding.words(decoding.best_path(lp, VOCAB.blank), lp, VOCAB, RULES, FRAME_S, 1.0)
    assert [w.word.text for w in boosted] == ["KWAME"]
    assert (boosted[0].word.start, boosted[0].word.end) == (plain[0].word.start, plain[0].word.end)
    assert boosted[0].word.confidence < plain[0].word.confidence


def test_without_a_boost_the_search_agrees_with_the_greedy_path():
    lp = log_probs([*spoken("THE"), {"|": 0.9}, *spoken("CAT"), {"|": 0.9}, *spoken("SAT")])
    assert HotwordDecoder(VOCAB, RULES).decode(lp, [], 0.0) == decoding.best_path(lp, 0)


def test_a_boost_does_not_overrule_clear_audio():
    lp = log_probs(spoken("DOG"), floor=1e-6)
    assert text(HotwordDecoder(VOCAB, RULES).decode(lp, ["cat"], 10.0), lp) == "DOG"


def test_outputs_written_as_nothing_count_as_blank():
    frames = spoken("AB")
    frames[1] = {"<s>": 0.9}  # the model's <s> where a blank would be
    lp = log_probs(frames)
    assert text(HotwordDecoder(VOCAB, RULES).decode(lp, [], 0.0), lp) == "AB"


def test_phrases_the_model_cannot_write_and_negative_boosts_are_refused():
    decoder = HotwordDecoder(VOCAB, RULES)
    lp = log_probs(spoken("A"))
    with pytest.raises(InvalidConfig, match="characters the model cannot write: ж"):
        decoder.decode(lp, ["жук"], 5.0)
    with pytest.raises(InvalidConfig, match="boost must be 0 or more, got -1"):
        decoder.decode(lp, ["A"], -1.0)
    assert decoder.hotwords(["don't stop"]) == ["DON'T STOP"]


def test_a_vocabulary_of_word_pieces_is_refused():
    pieces = Vocabulary(("", "|", "ab", "c"), blank=0, delimiter=1)
    with pytest.raises(ValueError, match="distinct single characters"):
        HotwordDecoder(pieces, RULES)
