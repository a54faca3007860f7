"""Expected phrases scored against the audio, over gRPC: ranked alternatives with confidences."""

import pytest
from stt.v1 import stt_pb2

from tests.ctc_support import CASES, check_timings, model_dir, seconds, settings
from tests.support import clip, request, running, transcript

DISTRACTORS = {"ha": ("sannu da zuwa", "ina kwana"), "ar": ("قهوة", "أخطبوط محمصة")}


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def served(request, tiny_models, audio_dir):
    case = request.param
    config = settings(case, model_dir(case, tiny_models))
    with running(case.service, config, case.module.Backend(config)) as server:
        assert server.wait_loaded()
        yield case, server


def scored(server, case, phrases, **config) -> stt_pb2.RecognizeResponse:
    return server.stub.Recognize(
        request(
            clip(case.clip),
            language_code=case.language,
            speech_contexts=[stt_pb2.SpeechContext(phrases=phrases)],
            enable_word_time_offsets=True,
            enable_word_confidence=True,
            **config,
        )
    )


def test_the_models_own_reading_ranks_first(served):
    case, server = served
    heard = transcript(server.stub.Recognize(request(clip(case.clip), language_code=case.language)))
    assert heard, "the model heard nothing in a clip of speech"
    first, second = DISTRACTORS[case.language]
    response = scored(server, case, [first, heard, second])
    assert len(response.results) == 1
    ranked = response.results[0].alternatives
    assert ranked[0].transcript == heard
    assert sorted(a.transcript for a in ranked) == sorted([first, heard, second])
    confidences = [a.confidence for a in ranked]
    assert confidences == sorted(confidences, reverse=True)
    assert confidences[0] > 0.5 and sum(confidences) <= 1 + 1e-6
    # The winner's words are the phrase's words, timed inside the audio.
    best = ranked[0]
    assert [w.word for w in best.words] == heard.split()
    check_timings(response, seconds(response.audio_duration))
    for alternative in ranked[1:]:
        assert [w.word for w in alternative.words] == alternative.transcript.split()


def test_max_alternatives_caps_the_ranking(served):
    case, server = served
    phrases = list(DISTRACTORS[case.language])
    response = scored(server, case, phrases, max_alternatives=1)
    assert len(response.results[0].alternatives) == 1
    assert response.results[0].alternatives[0].transcript in phrases


def test_phrases_that_match_nothing_all_score_low(served):
    case, server = served
    response = scored(server, case, list(DISTRACTORS[case.language]))
    assert all(a.confidence < 0.5 for a in response.results[0].alternatives)


def test_spelling_variants_of_one_phrase_score_alike(tiny_models, audio_dir):
    """Alef and taa marbuta forms fold together, and diacritics are not part of the score."""
    case = next(c for c in CASES if c.tiny == "wav2vec2")
    config = settings(case, model_dir(case, tiny_models))
    with running(case.service, config, case.module.Backend(config)) as server:
        assert server.wait_loaded()
        plain = scored(server, case, ["قهوة", "احمد"]).results[0].alternatives
        marked = scored(server, case, ["قَهْوَة", "أحمد"]).results[0].alternatives
    assert [a.confidence for a in marked] == pytest.approx([a.confidence for a in plain])
    assert {a.transcript for a in marked} == {"قَهْوَة", "أحمد"}  # returned as sent
