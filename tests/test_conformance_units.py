"""Pure logic behind the drop-in conformance: the languages and phrases a request hints at,
how its text is written out (masked, bare words), the job plan's channels, the Whisper prompt
of boosted phrases, the bucket allowlist setting, and Google's class tokens."""

from __future__ import annotations

import pytest
from stt.v1 import stt_pb2

from services.core.backend import DecodeOptions
from services.core.errors import InvalidConfig, UnsupportedLanguage
from services.core.hints import MAX_BOOST, boosted_phrases, candidate_code, language_choice
from services.core.text_form import PLAIN, make_words_bare, text_form
from services.jobs.buckets import BucketSettings
from services.jobs.worker import chunks
from services.router.dropin.fields import copy_phrases
from services.whisper_en.backend import boosted_prompt

SERVED = ("en", "es", "de")


def config(**fields) -> stt_pb2.RecognitionConfig:
    return stt_pb2.RecognitionConfig(**fields)


def test_alternative_languages_are_candidates_and_map_back_to_the_codes_given():
    asked = config(language_code="en-US", alternative_language_codes=["es-ES", "de-AT"])
    assert language_choice(asked, SERVED, "s") == (None, ("en", "es", "de"))
    assert candidate_code("de", asked) == "de-AT" and candidate_code("en", asked) == "en-US"
    same = config(language_code="en-US", alternative_language_codes=["en-GB"])
    assert language_choice(same, SERVED, "s") == ("en", ())  # nothing to choose between
    assert language_choice(config(language_code="es"), SERVED, "s") == ("es", ())
    with pytest.raises(UnsupportedLanguage, match="'fr' is not served"):
        language_choice(config(language_code="en", alternative_language_codes=["fr"]), SERVED, "s")
    with pytest.raises(InvalidConfig, match="needs language_code"):
        language_choice(config(alternative_language_codes=["es"]), SERVED, "s")


def test_boosts_are_capped_and_do_not_mix_with_candidate_phrases():
    asked = config(speech_contexts=[{"phrases": ["Zorbulon"], "boost": 55}, {"phrases": ["x"]}])
    with pytest.raises(InvalidConfig, match="mixes candidate phrases"):
        boosted_phrases(asked)
    del asked.speech_contexts[1]
    assert boosted_phrases(asked) == (("Zorbulon",), MAX_BOOST)
    assert boosted_phrases(config()) == ((), 0.0)
    with pytest.raises(InvalidConfig, match="boost must be 0 or more"):
        boosted_phrases(config(speech_contexts=[{"phrases": ["a"], "boost": -1}]))


def test_google_class_tokens_are_left_out_of_speech_contexts():
    into = config()
    contexts = [stt_pb2.SpeechContext(phrases=["$TIME", "Zorbulon"], boost=4)]
    contexts.append(stt_pb2.SpeechContext(phrases=["$OOV_CLASS_DIGIT_SEQUENCE"]))
    copy_phrases(contexts, into, "config.speech_contexts")
    assert [(list(c.phrases), c.boost) for c in into.speech_contexts] == [(["Zorbulon"], 4.0)]


def test_the_text_form_masks_and_strips_alike_in_transcripts_and_words():
    form = text_form(config(profanity_filter=True, bare_words=True), "en")
    assert form.transcript("Oh shit, I forgot.") == "Oh s***, I forgot."
    assert [form.word(w) for w in ("shit,", "forgot.", "--")] == ["s***", "forgot", ""]
    assert text_form(config(), "en") is PLAIN and PLAIN.word("Bridge?") == "Bridge?"
    results = [stt_pb2.SpeechRecognitionResult()]
    alternative = results[0].alternatives.add(transcript="Well -- yes?")
    for word in ("Well", "--", "yes?"):
        alternative.words.add(word=word, speaker_label="1")
    make_words_bare(results)
    assert [(w.word, w.speaker_label) for w in alternative.words] == [("Well", "1"), ("yes", "1")]
    assert alternative.transcript == "Well -- yes?"


def test_a_job_plan_keeps_its_channels_and_reads_plans_without_them():
    plan = [chunks.Chunk(0, 16000), chunks.Chunk(0, 8000, 1)]
    assert chunks.dumps(plan) == "[[0, 16000], [0, 8000, 1]]"
    assert chunks.loads(chunks.dumps(plan)) == plan
    assert chunks.loads("[[5, 10]]") == [chunks.Chunk(5, 10, 0)]  # a plan stored before


def test_boosted_phrases_lead_the_whisper_prompt():
    options = DecodeOptions(
        boosted=("Zorbulon", "$TIME", "Xarelvotide"), boost=5, initial_prompt="Hi."
    )
    assert boosted_prompt(options).initial_prompt == "Zorbulon, Xarelvotide. Hi."
    assert boosted_prompt(options).boosted == ()
    assert boosted_prompt(DecodeOptions(boosted=("$TIME",))).initial_prompt == ""


def test_the_bucket_allowlist_setting(monkeypatch):
    monkeypatch.setenv("JOBS_URI_ALLOWED_BUCKETS", "gs://calls, S3://archive/")
    assert BucketSettings().allowed_buckets == ["gs://calls", "s3://archive"]
    monkeypatch.setenv("JOBS_URI_ALLOWED_BUCKETS", "calls")
    with pytest.raises(ValueError, match="is not gs://BUCKET or s3://BUCKET"):
        BucketSettings()
