"""Google Cloud Speech v1p1beta1 with its own client (`speech_v1p1beta1.SpeechClient`),
unchanged, beside v1 on the router's port: recognize and streaming answered in beta types,
the beta-only fields (the deprecated diarization fields mapped, ALAW refused by name), and the
same conformance as v1 (model names, bare words). A beta job answers in beta types:
tests/test_jobs_objects.py."""

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import speech_v1, speech_v1p1beta1
from google.cloud.speech_v1p1beta1.services.speech.transports import SpeechGrpcTransport

from services.router.dropin import google_beta
from services.router.dropin.google_convert import RecognizeRequest as V1Request
from tests.conformance_support import said, star_router_settings, wav
from tests.dropin_support import paced
from tests.support import espeak, metric, running_router

Config = speech_v1p1beta1.RecognitionConfig
QUESTION = "Okay Google, how old is the Brooklyn Bridge?"


@pytest.fixture(scope="module")
def router(dropin_whisper):
    with running_router(star_router_settings(dropin_whisper.target)) as router:
        yield router


@pytest.fixture(scope="module")
def beta(router):
    channel = grpc.insecure_channel(router.target)
    yield speech_v1p1beta1.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    channel.close()


def test_beta_recognize_answers_in_beta_types(beta, router):
    before = metric(router, "stt_router_requests_total", api="google_v1p1beta1", code="OK")
    config = Config(
        language_code="en-US",
        model="video",
        use_enhanced=True,
        enable_word_time_offsets=True,
        enable_word_confidence=True,
        metadata=speech_v1p1beta1.RecognitionMetadata(
            interaction_type=speech_v1p1beta1.RecognitionMetadata.InteractionType.DISCUSSION,
            recording_device_name="Pixel 2 XL",
        ),
    )
    response = beta.recognize(
        config=config, audio=speech_v1p1beta1.RecognitionAudio(content=espeak(QUESTION))
    )
    assert isinstance(response, speech_v1p1beta1.RecognizeResponse)
    best = response.results[0].alternatives[0]
    assert "Brooklyn" in best.transcript and best.transcript.endswith("?")
    assert best.words[-1].word == "Bridge" and 0 < best.words[-1].confidence <= 1
    after = metric(router, "stt_router_requests_total", api="google_v1p1beta1", code="OK")
    assert after == before + 1


def test_beta_streaming_answers_in_beta_types(beta):
    config = speech_v1p1beta1.StreamingRecognitionConfig(
        config=Config(
            encoding=Config.AudioEncoding.LINEAR16, sample_rate_hertz=16000, language_code="en-US"
        )
    )
    audio = said(QUESTION).tobytes()
    requests = (
        speech_v1p1beta1.StreamingRecognizeRequest(audio_content=chunk)
        for chunk in paced(audio, pace_s=0.02)
    )
    finals = [
        result
        for response in beta.streaming_recognize(config, requests, timeout=120)
        for result in response.results
        if result.is_final
    ]
    assert isinstance(finals[0], speech_v1p1beta1.StreamingRecognitionResult)
    assert "Brooklyn" in " ".join(r.alternatives[0].transcript for r in finals)


def test_alaw_is_refused_by_name(beta):
    config = Config(encoding=Config.AudioEncoding.ALAW, sample_rate_hertz=8000, language_code="en")
    with pytest.raises(exceptions.InvalidArgument) as refused:
        beta.recognize(
            config=config, audio=speech_v1p1beta1.RecognitionAudio(content=b"\xd5" * 800)
        )
    assert "config.encoding ALAW is not supported" in refused.value.message


def test_the_deprecated_diarization_fields_become_diarization_config():
    request = speech_v1p1beta1.RecognizeRequest(
        config=Config(
            language_code="en", enable_speaker_diarization=True, diarization_speaker_count=2
        ),
        audio=speech_v1p1beta1.RecognitionAudio(content=b"audio"),
    )
    v1 = google_beta.to_v1(speech_v1p1beta1.RecognizeRequest.pb(request), V1Request)
    speakers = v1.config.diarization_config
    assert speakers.enable_speaker_diarization
    assert (speakers.min_speaker_count, speakers.max_speaker_count) == (2, 2)
    assert v1.audio.content == b"audio" and v1.config.language_code == "en"
    # diarization_config, when given, is taken as it is.
    request.config.diarization_config = speech_v1p1beta1.SpeakerDiarizationConfig(
        enable_speaker_diarization=True, max_speaker_count=5
    )
    v1 = google_beta.to_v1(speech_v1p1beta1.RecognizeRequest.pb(request), V1Request)
    assert v1.config.diarization_config.max_speaker_count == 5
    assert v1.config.diarization_config.min_speaker_count == 0


def test_v1_and_beta_serve_the_same_answer(beta, router):
    content = wav(said(QUESTION))
    channel = grpc.insecure_channel(router.target)
    try:
        v1 = speech_v1.SpeechClient(
            transport=speech_v1.services.speech.transports.SpeechGrpcTransport(channel=channel)
        )
        one = v1.recognize(
            config=speech_v1.RecognitionConfig(language_code="en-US", model="video"),
            audio=speech_v1.RecognitionAudio(content=content),
        )
    finally:
        channel.close()
    other = beta.recognize(
        config=Config(language_code="en-US", model="video"),
        audio=speech_v1p1beta1.RecognitionAudio(content=content),
    )
    texts = [[r.alternatives[0].transcript for r in x.results] for x in (one, other)]
    assert texts[0] == texts[1] and "Brooklyn" in texts[0][0]
