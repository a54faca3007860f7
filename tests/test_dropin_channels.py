"""Separate recognition per channel (Google's `enable_separate_recognition_per_channel` with
`audio_channel_count`, Riva's same fields, stt.v1's): a call-centre recording with the agent on
one channel and the customer on the other, made with espeak-ng; each channel recognised on its
own, its results tagged 1 or 2, all in time order. Jobs: tests/test_jobs_objects.py."""

import numpy as np
import pytest
import riva.client
from google.api_core import exceptions
from google.cloud import speech_v1

from tests.conformance_support import call, said, wav
from tests.support import request

Config = speech_v1.RecognitionConfig
AGENT = "Thank you for calling the help desk. How can I help you today?"
CUSTOMER = "My printer stopped working this morning."


@pytest.fixture(scope="module")
def recording():
    return call(AGENT, CUSTOMER)


def by_channel(results) -> dict[int, str]:
    texts: dict[int, list[str]] = {}
    for result in results:
        texts.setdefault(result.channel_tag, []).append(result.alternatives[0].transcript)
    return {tag: " ".join(parts) for tag, parts in texts.items()}


def test_google_recognizes_each_channel_on_its_own(google_v1, recording):
    content, second_starts = recording
    config = Config(
        encoding=Config.AudioEncoding.LINEAR16,
        sample_rate_hertz=16000,
        language_code="en-US",
        audio_channel_count=2,
        enable_separate_recognition_per_channel=True,
        enable_word_time_offsets=True,
    )
    response = google_v1.recognize(
        config=config, audio=speech_v1.RecognitionAudio(content=content), timeout=120
    )
    texts = by_channel(response.results)
    assert set(texts) == {1, 2}
    assert "help desk" in texts[1] and "printer" not in texts[1]
    assert "printer" in texts[2] and "help desk" not in texts[2]
    tags = [r.channel_tag for r in response.results]
    assert tags == sorted(tags), "the results are not in time order"
    customer_words = [
        w for r in response.results if r.channel_tag == 2 for w in r.alternatives[0].words
    ]
    assert customer_words[0].start_time.total_seconds() >= second_starts - 0.3


def test_riva_recognizes_each_channel_on_its_own(star_router, recording):
    content, _ = recording
    auth = riva.client.Auth(uri=star_router.target)
    try:
        config = riva.client.RecognitionConfig(
            language_code="en-US",
            audio_channel_count=2,
            enable_separate_recognition_per_channel=True,
        )
        response = riva.client.ASRService(auth).offline_recognize(content, config)
    finally:
        auth.channel.close()
    texts = by_channel(response.results)
    assert set(texts) == {1, 2} and "printer" in texts[2]


def test_mono_with_one_channel_is_channel_1(google_v1):
    """What Google's beta multichannel sample sends: mono audio, one channel, tag 1."""
    config = Config(
        language_code="en-US", audio_channel_count=1, enable_separate_recognition_per_channel=True
    )
    response = google_v1.recognize(
        config=config, audio=speech_v1.RecognitionAudio(content=wav(said(CUSTOMER))), timeout=120
    )
    assert response.results and {r.channel_tag for r in response.results} == {1}


def test_a_silent_channel_has_no_results_and_stt_v1_tags_too(star_router):
    speech = said(CUSTOMER)
    content = wav(speech, np.zeros_like(speech))  # the second party says nothing
    asked = request(content, language_code="en", enable_separate_recognition_per_channel=True)
    response = star_router.stub.Recognize(asked, timeout=120)
    assert response.results and {r.channel_tag for r in response.results} == {1}
    assert "printer" in response.results[0].alternatives[0].transcript


def test_a_channel_count_that_is_not_the_audio_s_is_refused(google_v1, recording):
    content, _ = recording
    config = Config(
        language_code="en-US", audio_channel_count=3, enable_separate_recognition_per_channel=True
    )
    with pytest.raises(exceptions.InvalidArgument) as refused:
        google_v1.recognize(config=config, audio=speech_v1.RecognitionAudio(content=content))
    assert "audio_channel_count is 3 but the wav audio has 2 channels" in refused.value.message


def test_streams_refuse_separate_channels_by_name(google_v1):
    config = speech_v1.StreamingRecognitionConfig(
        config=Config(
            encoding=Config.AudioEncoding.LINEAR16,
            sample_rate_hertz=16000,
            language_code="en-US",
            audio_channel_count=2,
            enable_separate_recognition_per_channel=True,
        )
    )
    requests = iter([speech_v1.StreamingRecognizeRequest(audio_content=b"\0" * 6400)])
    with pytest.raises(exceptions.InvalidArgument) as refused:
        list(google_v1.streaming_recognize(config, requests, timeout=30))
    field = "streaming_config.config.enable_separate_recognition_per_channel"
    assert field in refused.value.message
