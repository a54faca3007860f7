"""Google Cloud Speech v1's own client (`google-cloud-speech`), unchanged, against the router
in front of a real whisper_en: recognize with word timings, streaming with interim results,
and refusals raised as the client's own exception types. Jobs and speakers: test_dropin_jobs."""

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import speech_v1
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport
from google.protobuf import duration_pb2

from tests.conftest import SPANS
from tests.dropin_support import (
    JFK,
    JFK_SECONDS,
    PER_CLIP_WER,
    READING,
    check_word_timings,
    paced,
    pcm16,
    reference,
    wer,
)
from tests.support import clip, metric

Config = speech_v1.RecognitionConfig


@pytest.fixture(scope="module")
def client(dropin_router):
    channel = grpc.insecure_channel(dropin_router.target)
    yield speech_v1.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    channel.close()


def audio(path: str) -> speech_v1.RecognitionAudio:
    return speech_v1.RecognitionAudio(content=clip(path))


def test_recognize_transcribes_with_word_timings(client, dropin_router, audio_dir):
    before = metric(dropin_router, "stt_router_requests_total", api="google", code="OK")
    SPANS.clear()
    config = Config(
        language_code="en-US", enable_word_time_offsets=True, enable_word_confidence=True
    )
    response = client.recognize(config=config, audio=audio(JFK), timeout=120)
    text = " ".join(r.alternatives[0].transcript for r in response.results)
    assert wer(reference(JFK), text) == 0.0, text
    words = [w for r in response.results for w in r.alternatives[0].words]
    timings = [(w.word, w.start_time.total_seconds(), w.end_time.total_seconds()) for w in words]
    check_word_timings(timings, JFK_SECONDS)
    assert all(0 < w.confidence <= 1 for w in words)
    assert response.results[0].language_code == "en"
    assert response.total_billed_time.total_seconds() == pytest.approx(JFK_SECONDS, abs=0.01)
    after = metric(dropin_router, "stt_router_requests_total", api="google", code="OK")
    assert after == before + 1
    spans = [s for s in SPANS.get_finished_spans() if s.attributes.get("stt.api") == "google"]
    assert [s.name for s in spans] == ["google.cloud.speech.v1.Speech/Recognize"]


def test_streaming_sends_interim_results_then_finals(client, audio_dir):
    config = speech_v1.StreamingRecognitionConfig(
        config=Config(
            encoding=Config.AudioEncoding.LINEAR16,
            sample_rate_hertz=16000,
            language_code="en-US",
            enable_word_time_offsets=True,
        ),
        interim_results=True,
        # Pauses of up to 1.5 s stay inside one utterance, so interims have time to come.
        voice_activity_timeout=speech_v1.StreamingRecognitionConfig.VoiceActivityTimeout(
            speech_end_timeout=duration_pb2.Duration(seconds=1, nanos=500_000_000)
        ),
    )
    requests = (
        speech_v1.StreamingRecognizeRequest(audio_content=chunk) for chunk in paced(pcm16(READING))
    )
    results = [
        result
        for response in client.streaming_recognize(config, requests, timeout=120)
        for result in response.results
    ]
    kinds = [result.is_final for result in results]
    assert False in kinds and True in kinds, kinds
    assert kinds.index(False) < kinds.index(True), "no interim came before the first final"
    assert all(0 <= r.stability <= 1 for r in results if not r.is_final)
    finals = [r for r in results if r.is_final]
    text = " ".join(r.alternatives[0].transcript for r in finals)
    assert wer(reference(READING), text) <= PER_CLIP_WER, text
    words = [w for r in finals for w in r.alternatives[0].words]
    timings = [(w.word, w.start_time.total_seconds(), w.end_time.total_seconds()) for w in words]
    check_word_timings(timings, 11.7)


def test_bad_audio_raises_invalid_argument(client):
    content = speech_v1.RecognitionAudio(content=b"this is not audio" * 100)
    with pytest.raises(exceptions.InvalidArgument) as refused:
        client.recognize(config=Config(language_code="en-US"), audio=content, timeout=30)
    assert refused.value.grpc_status_code is grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_language_raises_invalid_argument(client, audio_dir):
    with pytest.raises(exceptions.InvalidArgument) as refused:
        client.recognize(config=Config(language_code="fr-FR"), audio=audio(JFK), timeout=30)
    assert "'fr-FR' is not served" in refused.value.message
    assert "en" in refused.value.message


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"encoding": Config.AudioEncoding.AMR}, "config.encoding AMR"),
        ({"adaptation": {"phrase_set_references": ["projects/p/phraseSets/s"]}}, "adaptation"),
        ({"enable_spoken_punctuation": True}, "config.enable_spoken_punctuation"),
        (
            {"speech_contexts": [{"phrases": ["fellow Americans"], "boost": -1}]},
            "config.speech_contexts[0].boost -1",
        ),
        ({"model": "telephony"}, "config.model 'telephony'"),
    ],
)
def test_unsupported_fields_are_refused_by_name(client, config, field):
    with pytest.raises(exceptions.InvalidArgument) as refused:
        client.recognize(
            config=Config(language_code="en-US", **config),
            audio=speech_v1.RecognitionAudio(content=b"\0" * 3200),
            timeout=30,
        )
    assert field in refused.value.message


def test_audio_from_a_uri_is_refused(client):
    with pytest.raises(exceptions.InvalidArgument) as refused:
        client.recognize(
            config=Config(language_code="en-US"),
            audio=speech_v1.RecognitionAudio(uri="gs://bucket/clip.flac"),
            timeout=30,
        )
    assert "audio.uri" in refused.value.message


def test_streaming_with_diarization_is_refused_by_name(client):
    config = speech_v1.StreamingRecognitionConfig(
        config=Config(
            language_code="en-US",
            diarization_config=speech_v1.SpeakerDiarizationConfig(enable_speaker_diarization=True),
        )
    )
    requests = iter([speech_v1.StreamingRecognizeRequest(audio_content=b"\0" * 3200)])
    with pytest.raises(exceptions.InvalidArgument) as refused:
        list(client.streaming_recognize(config, requests, timeout=30))
    field = "streaming_config.config.diarization_config.enable_speaker_diarization"
    assert field in refused.value.message
