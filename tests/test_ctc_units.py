"""The CTC backend's parts on their own: windows, greedy decoding, alignment, scoring, text."""

import math

import numpy as np
import pytest
from pydantic import ValidationError

from services.arabic_words.text import ArabicText
from services.core.errors import InvalidConfig
from services.ctc import alignment, decoding, device, scoring, windows
from services.ctc.text import TextRules
from services.ctc.vocabulary import Vocabulary
from services.hausa_stt.settings import HausaSettings

# blank, separator, a, b, c
VOCAB = Vocabulary(("", "|", "a", "b", "c"), blank=0, delimiter=1)
BLANK, SEP, A, B, C = range(5)


def frames(path: list[int], sure: float = 0.9) -> np.ndarray:
    """Log-probabilities whose best output at frame t is path[t], with probability `sure`."""
    probs = np.full((len(path), len(VOCAB.tokens)), (1 - sure) / (len(VOCAB.tokens) - 1))
    probs[np.arange(len(path)), path] = sure
    return np.log(probs).astype(np.float32)


@pytest.mark.parametrize(
    ("total", "window", "stride", "per_frame"),
    [(1000, 200, 40, 1), (12_345, 1_000, 160, 20), (999, 100, 20, 2), (200, 200, 40, 2)],
)
def test_windows_keep_every_frame_once(total, window, stride, per_frame):
    planned = windows.plan(total, window, stride, per_frame)
    assert planned[0].start == 0 and planned[-1].end == total
    # Each window's frame j is frame start/per_frame + j of the whole input: the merged
    # frames of a model that outputs its frame numbers must count 0, 1, 2, ... once each.
    merged = np.concatenate(
        [w.kept(np.arange(w.start // per_frame, w.end // per_frame), per_frame) for w in planned]
    )
    assert merged.tolist() == list(range(total // per_frame))
    for w in planned:
        assert w.end - w.start <= window and w.start % per_frame == 0


def test_greedy_decoding_merges_repeats_and_times_words():
    # "ab" over frames 1-3, a separator, then "cc" (two c's, a blank between them).
    path = [BLANK, A, A, B, SEP, SEP, C, BLANK, C, BLANK]
    log_probs = frames(path)
    tokens = decoding.best_path(log_probs, VOCAB.blank)
    timed = decoding.words(tokens, log_probs, VOCAB, TextRules(), frame_s=0.02, duration=0.19)
    words = [t.word for t in timed]
    assert [w.text for w in words] == ["ab", "cc"]
    assert (words[0].start, words[0].end) == pytest.approx((0.02, 0.08))
    assert (words[1].start, words[1].end) == pytest.approx((0.12, 0.18))
    assert words[0].confidence == pytest.approx(0.9)
    segment = decoding.segments(timed)[0]
    assert segment.text == "ab cc" and segment.confidence == pytest.approx(0.9)


def test_a_long_pause_starts_a_new_segment():
    path = [A, SEP] + [BLANK] * 50 + [B]
    log_probs = frames(path)
    tokens = decoding.best_path(log_probs, VOCAB.blank)
    timed = decoding.words(tokens, log_probs, VOCAB, TextRules(), 0.02, 1.06)
    assert [s.text for s in decoding.segments(timed)] == ["a", "b"]


def test_word_ends_never_pass_the_audio():
    log_probs = frames([A, A, A])
    tokens = decoding.best_path(log_probs, VOCAB.blank)
    timed = decoding.words(tokens, log_probs, VOCAB, TextRules(), frame_s=0.04, duration=0.1)
    assert timed[0].word.end == 0.1


def test_likelihood_sums_paths_and_alignment_finds_the_best_one():
    log_probs = frames([BLANK, A, A, BLANK, B, BLANK])
    ab, ba = alignment.log_likelihoods(log_probs, [[A, B], [B, A]], VOCAB.blank, None)
    assert ab.log_likelihood > ba.log_likelihood
    # The best single path has probability 0.9^6; the sum over all paths is larger.
    assert ab.log_likelihood > 6 * math.log(0.9)
    assert alignment.align(log_probs, (A, B), VOCAB.blank) == [(1, 2), (4, 4)]
    assert alignment.align(log_probs[:1], (A, B), VOCAB.blank) == []  # too short to spell it


def test_separators_at_the_edges_count_as_the_same_text():
    log_probs = frames([SEP, A, SEP])
    (plain,) = alignment.log_likelihoods(log_probs, [[A]], VOCAB.blank, None)
    (edges,) = alignment.log_likelihoods(log_probs, [[A]], VOCAB.blank, VOCAB.delimiter)
    assert edges.log_likelihood > plain.log_likelihood
    assert edges.labels == (SEP, A, SEP) and edges.offset == 1


def test_candidates_are_ranked_with_confidences_that_sum_to_at_most_one():
    log_probs = frames([BLANK, A, B, SEP, C, BLANK])
    tokens = decoding.best_path(log_probs, VOCAB.blank)
    heard = scoring.Frames(log_probs, tokens, "ab c", 0.02, 0.12)
    segment = scoring.rank(heard, ("ba", "ab c", "c"), VOCAB, TextRules(), temperature=1.0)
    assert segment.text == "ab c" and segment.confidence > 0.5
    assert [a.text for a in segment.alternatives] == ["c", "ba"]
    confidences = [segment.confidence] + [a.confidence for a in segment.alternatives]
    assert confidences == sorted(confidences, reverse=True) and sum(confidences) <= 1 + 1e-9
    assert [w.text for w in segment.words] == ["ab", "c"]
    assert segment.words[0].start == pytest.approx(0.02)
    assert segment.words[1].end == pytest.approx(0.1)


def test_what_the_model_heard_competes_when_no_phrase_matches_it():
    log_probs = frames([BLANK, A, B, BLANK])
    tokens = decoding.best_path(log_probs, VOCAB.blank)
    heard = scoring.Frames(log_probs, tokens, "ab", 0.02, 0.08)
    segment = scoring.rank(heard, ("cc", "a"), VOCAB, TextRules(), temperature=1.0)
    assert segment.text == "a" and segment.confidence < 0.1
    softer = scoring.rank(heard, ("cc", "a"), VOCAB, TextRules(), temperature=10.0)
    assert softer.confidence > segment.confidence


def test_silence_heard_leaves_every_phrase_unlikely():
    log_probs = frames([BLANK] * 6, sure=0.99)
    heard = scoring.Frames(log_probs, [], "", 0.02, 0.12)
    segment = scoring.rank(heard, ("a", "bc"), VOCAB, TextRules(), temperature=1.0)
    assert segment.confidence < 0.1 and segment.alternatives[0].confidence < 0.1


def test_spelling_refuses_what_the_model_cannot_write():
    assert VOCAB.spell("Ab, c!", TextRules()) == [("Ab,", [A, B]), ("c!", [C])]
    with pytest.raises(InvalidConfig, match="cannot write: xz"):
        VOCAB.spell("a xz", TextRules())
    with pytest.raises(InvalidConfig, match="no letters"):
        VOCAB.spell("?!", TextRules())


def test_arabic_output_drops_diacritics_and_tatweel():
    rules = ArabicText()
    assert rules.display("مُحَمَّد") == "محمد"
    assert rules.display("كـــتاب") == "كتاب"
    assert rules.display("\ufefb") == "لا"  # the lam-alef ligature
    assert rules.display("  قَهْوَة   مُرّة ") == "قهوة مرة"


def test_arabic_comparison_folds_alef_hamza_taa_marbuta_and_yeh():
    rules = ArabicText()
    assert rules.fold("أحمد") == rules.fold("احمد") == rules.fold("إحمد") == rules.fold("آحمد")
    assert rules.fold("مدرسة") == rules.fold("مدرسه")
    assert rules.fold("مستشفى") == rules.fold("مستشفي")
    assert rules.fold("مسؤول") == rules.fold("مسوول")
    assert rules.fold("٣") == "3"
    assert rules.display("أحمد") == "أحمد"  # output keeps the spelling


def test_arabic_spelling_leaves_out_diacritics_and_folds_unknown_letters():
    vocab = Vocabulary(("", "|", "ا", "ح", "م", "د"), blank=0, delimiter=1)
    assert vocab.spell("أَحْمَد", ArabicText()) == [("أحمد", [2, 3, 4, 5])]
    lam_alef = Vocabulary(("", "|", "ل", "ا"), blank=0, delimiter=1)
    assert lam_alef.spell("\ufefb", ArabicText()) == [("لا", [2, 3])]  # the ligature


def test_gpu_window_grows_with_free_memory():
    assert device.gpu_window_seconds(1 * device.GIB) == 20
    assert device.gpu_window_seconds(3 * device.GIB) == 25
    assert device.gpu_window_seconds(40 * device.GIB) == 30


def test_cpu_window_is_fixed_unless_set():
    assert device.window_seconds(HausaSettings(), "cpu") == device.CPU_WINDOW_S
    assert device.window_seconds(HausaSettings(chunk_seconds=12), "cpu") == 12


def test_a_window_must_be_longer_than_its_two_strides():
    with pytest.raises(ValidationError, match="more than twice"):
        HausaSettings(chunk_seconds=4, stride_seconds=2)
