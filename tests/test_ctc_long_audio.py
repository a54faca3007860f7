"""Long audio through the CTC services: overlapping windows and VAD pieces give the words of
one pass, with none doubled or dropped at a join.

The tiny models here have their attention muted (ctc_models.mute_attention), so a frame's
output depends only on its neighbours and merged windows must match one pass exactly, times
included. A real checkpoint hears a little less context in a window, so for it the words must
agree closely rather than exactly.
"""

import pytest

from tests.ctc_support import CASES, check_timings, model_dir, seconds, settings
from tests.support import clip, request, running, wer

# Real models need more context than tiny ones to give the same words in a window.
TINY_WINDOW = dict(chunk_seconds=4.0, stride_seconds=1.0)
REAL_WINDOW = dict(chunk_seconds=10.0, stride_seconds=2.5)
ONE_PASS = dict(chunk_seconds=200.0, stride_seconds=2.5)
REAL_WORD_DISAGREEMENT = 0.1


def recognise(case, model, content: bytes, vad: bool, **window):
    config = settings(case, model, max_chunk_seconds=60 if not vad else 30, **window)
    with running(case.service, config, case.module.Backend(config)) as server:
        assert server.wait_loaded()
        response = server.stub.Recognize(
            request(
                content,
                language_code=case.language,
                enable_word_time_offsets=True,
                enable_voice_activity_detection=vad,
            ),
            timeout=300,
        )
    return response, check_timings(response, seconds(response.audio_duration))


def assert_same_words(case, one_pass, windowed) -> None:
    if case.tiny:
        assert windowed == one_pass
    else:
        reference = " ".join(w for w, _, _ in one_pass)
        heard = " ".join(w for w, _, _ in windowed)
        assert wer(reference, heard) <= REAL_WORD_DISAGREEMENT, (reference, heard)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_windows_give_the_words_of_one_pass(tiny_models, audio_dir, case):
    """20 s of speech heard whole (VAD off): one window, or windows with strides."""
    model = model_dir(case, tiny_models, local=True)
    content = clip("en/multispeaker_three_speakers_picovoice.wav")
    _, one_pass = recognise(case, model, content, vad=False, **ONE_PASS)
    window = TINY_WINDOW if case.tiny else REAL_WINDOW
    _, windowed = recognise(case, model, content, vad=False, **window)
    assert len(one_pass) >= 3
    assert_same_words(case, one_pass, windowed)


@pytest.mark.parametrize("case", CASES[::2], ids=[c.id for c in CASES[::2]])
def test_long_form_in_pieces_and_windows(tiny_models, audio_dir, case):
    """127 s: VAD cuts it into pieces of up to 30 s, and windows cut each piece again."""
    model = model_dir(case, tiny_models, local=True)
    content = clip("en/long_concat_en.flac")
    response, one_pass = recognise(case, model, content, vad=True, **ONE_PASS)
    assert seconds(response.audio_duration) == pytest.approx(126.98, abs=0.01)
    assert len(response.results) >= 4  # about 104 s of speech in pieces of at most 30 s
    window = TINY_WINDOW if case.tiny else REAL_WINDOW
    _, windowed = recognise(case, model, content, vad=True, **window)
    assert_same_words(case, one_pass, windowed)
