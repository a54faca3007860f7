"""Phrase boosting with the official clients: Google's `speech_contexts[].boost` and Riva's
boosted words (`add_word_boosting_to_config`) make whisper_en spell a rare name it misses
without them, and add nothing where the name is not said. Speech made with espeak-ng, the
bundled Whisper base model. The CTC services' boosting: tests/test_ctc_boost.py."""

import grpc
import pytest
import riva.client
from google.api_core import exceptions
from google.cloud import speech_v1

from tests.support import espeak, request, transcript

Config = speech_v1.RecognitionConfig
INVOICE = "Please send the invoice to {} before Friday."
DRUG = "The new drug is called Xarelvotide."


def google_text(google_v1, content: bytes, contexts=()) -> str:
    config = Config(language_code="en-US", speech_contexts=list(contexts))
    response = google_v1.recognize(
        config=config, audio=speech_v1.RecognitionAudio(content=content), timeout=120
    )
    return " ".join(r.alternatives[0].transcript for r in response.results)


def test_a_google_boost_finds_a_rare_name_missed_without_it(google_v1):
    content = espeak(INVOICE.format("Zorbulon"))
    assert "Zorbulon" not in google_text(google_v1, content)
    boosted = [speech_v1.SpeechContext(phrases=["Zorbulon"], boost=10)]
    heard = google_text(google_v1, content, boosted)
    assert "Zorbulon" in heard and "Friday" in heard, heard
    # Where the name is not said, the boost adds nothing.
    other = espeak(INVOICE.format("Robert"))
    assert "Zorbulon" not in google_text(google_v1, other, boosted)


def test_riva_boosted_words_find_a_rare_word_missed_without_them(star_router):
    content = espeak(DRUG)
    auth = riva.client.Auth(uri=star_router.target)
    try:
        asr = riva.client.ASRService(auth)
        config = riva.client.RecognitionConfig(language_code="en-US")
        plain = asr.offline_recognize(content, config).results[0].alternatives[0].transcript
        # What `--boosted-lm-words Xarelvotide` sends, at the scripts' default score.
        riva.client.add_word_boosting_to_config(config, ["Xarelvotide"], 4.0)
        boosted = asr.offline_recognize(content, config).results[0].alternatives[0].transcript
    finally:
        auth.channel.close()
    assert "Xarelvotide" not in plain
    assert "Xarelvotide" in boosted, boosted


def test_stt_v1_boost_and_its_refusals(star_router, google_v1):
    content = espeak(INVOICE.format("Zorbulon"))
    asked = request(content, language_code="en")
    asked.config.speech_contexts.add(phrases=["Zorbulon"], boost=30)  # taken as 20
    assert "Zorbulon" in transcript(star_router.stub.Recognize(asked, timeout=120))
    # Candidate phrases (boost 0) and boosted ones do not mix.
    asked.config.speech_contexts.add(phrases=["Friday"])
    with pytest.raises(grpc.RpcError) as refused:
        star_router.stub.Recognize(asked, timeout=60)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "mixes candidate phrases (boost 0) with boosted ones" in refused.value.details()
    # Google's class tokens name no words: left out, the request is served as it is.
    classes = [speech_v1.SpeechContext(phrases=["$TIME"])]
    assert "Friday" in google_text(google_v1, content, classes)
    with pytest.raises(exceptions.InvalidArgument):
        google_text(google_v1, content, [speech_v1.SpeechContext(phrases=["a"], boost=-2)])
