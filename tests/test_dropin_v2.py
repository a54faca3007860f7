"""Google Cloud Speech v2 with its own client (`speech_v2.SpeechClient`), unchanged, as v2's
samples call it: Recognize and StreamingRecognize with the configuration inline on the `_`
recognizer (auto-detected decoding, a model name, language codes), voice activity events in a
stream of a WAV file sent in parts, and refusals by name of what lives in Google's stores."""

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import speech_v2
from google.cloud.speech_v2.services.speech.transports import SpeechGrpcTransport
from google.cloud.speech_v2.types import cloud_speech
from google.protobuf import duration_pb2

from tests.conformance_support import star_router_settings
from tests.support import espeak, running_router

RECOGNIZER = "projects/my-project/locations/global/recognizers/_"
QUESTION = "How old is the Brooklyn Bridge?"
Events = cloud_speech.StreamingRecognizeResponse.SpeechEventType


@pytest.fixture(scope="module")
def router(dropin_whisper):
    with running_router(star_router_settings(dropin_whisper.target)) as router:
        yield router


@pytest.fixture(scope="module")
def client(router):
    channel = grpc.insecure_channel(router.target)
    yield speech_v2.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    channel.close()


def config(**fields) -> cloud_speech.RecognitionConfig:
    fields.setdefault("language_codes", ["en-US"])
    return cloud_speech.RecognitionConfig(
        auto_decoding_config=cloud_speech.AutoDetectDecodingConfig(), model="long", **fields
    )


def test_recognize_with_an_inline_config_on_the_default_recognizer(client):
    features = cloud_speech.RecognitionFeatures(
        enable_word_time_offsets=True, enable_word_confidence=True
    )
    request = cloud_speech.RecognizeRequest(
        recognizer=RECOGNIZER, config=config(features=features), content=espeak(QUESTION)
    )
    response = client.recognize(request=request, timeout=120)
    best = response.results[0].alternatives[0]
    assert "Brooklyn" in best.transcript and best.transcript.endswith("?")
    assert best.words[-1].word == "Bridge" and best.words[-1].end_offset.total_seconds() > 0
    assert response.results[0].language_code == "en"
    assert response.metadata.request_id and response.metadata.total_billed_duration.seconds >= 1


def test_language_codes_beyond_the_first_are_alternatives(client):
    spanish = espeak("Buenos días, me llamo Carlos y vivo en Madrid.", voice="es")
    request = cloud_speech.RecognizeRequest(
        recognizer=RECOGNIZER, config=config(language_codes=["en-US", "es-ES"]), content=spanish
    )
    response = client.recognize(request=request, timeout=120)
    assert response.results[0].language_code == "es-ES"
    assert "Madrid" in response.results[0].alternatives[0].transcript


def test_a_stream_of_a_wav_file_gives_voice_activity_events_and_its_transcript(client):
    """As the voice activity events sample sends it: the file's bytes, header first, in five
    parts, with auto-detected decoding."""
    content = espeak(QUESTION)
    step = len(content) // 5
    streaming = cloud_speech.StreamingRecognitionConfig(
        config=config(),
        streaming_features=cloud_speech.StreamingRecognitionFeatures(
            enable_voice_activity_events=True,
            voice_activity_timeout=cloud_speech.StreamingRecognitionFeatures.VoiceActivityTimeout(
                speech_end_timeout=duration_pb2.Duration(seconds=1)
            ),
        ),
    )
    requests = [
        cloud_speech.StreamingRecognizeRequest(recognizer=RECOGNIZER, streaming_config=streaming),
        *(
            cloud_speech.StreamingRecognizeRequest(audio=content[at : at + step])
            for at in range(0, len(content), step)
        ),
    ]
    responses = list(client.streaming_recognize(requests=iter(requests), timeout=120))
    events = [r.speech_event_type for r in responses if r.speech_event_type]
    assert events[0] == Events.SPEECH_ACTIVITY_BEGIN and Events.SPEECH_ACTIVITY_END in events
    finals = [res for r in responses for res in r.results if res.is_final]
    assert "Brooklyn" in " ".join(f.alternatives[0].transcript for f in finals)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"recognizer": "projects/p/locations/global/recognizers/mine"}, "recognizer"),
        ({"config_mask": {"paths": ["model"]}}, "config_mask"),
        ({"uri": "gs://bucket/audio.flac", "content": None}, "uri is not supported"),
        (
            {"config": config(denoiser_config=cloud_speech.DenoiserConfig(denoise_audio=True))},
            "config.denoiser_config",
        ),
        (
            {
                "config": config(
                    adaptation=cloud_speech.SpeechAdaptation(
                        phrase_sets=[{"phrase_set": "projects/p/locations/l/phraseSets/s"}]
                    )
                )
            },
            "config.adaptation.phrase_sets[0].phrase_set",
        ),
        ({"config": cloud_speech.RecognitionConfig(model="long")}, "auto_decoding_config"),
    ],
)
def test_what_lives_in_google_s_stores_is_refused_by_name(client, fields, named):
    request = {"recognizer": RECOGNIZER, "config": config(), "content": b"\0" * 3200, **fields}
    if request["content"] is None:
        del request["content"]
    with pytest.raises(exceptions.InvalidArgument) as refused:
        client.recognize(request=cloud_speech.RecognizeRequest(**request), timeout=30)
    assert named in refused.value.message


def test_an_inline_phrase_set_boosts_its_phrases(client):
    content = espeak("Please send the invoice to Zorbulon before Friday.")
    plain = cloud_speech.RecognizeRequest(recognizer=RECOGNIZER, config=config(), content=content)
    assert "Zorbulon" not in client.recognize(request=plain).results[0].alternatives[0].transcript
    adaptation = cloud_speech.SpeechAdaptation(
        phrase_sets=[{"inline_phrase_set": {"phrases": [{"value": "Zorbulon", "boost": 10}]}}]
    )
    boosted = cloud_speech.RecognizeRequest(
        recognizer=RECOGNIZER, config=config(adaptation=adaptation), content=content
    )
    assert "Zorbulon" in client.recognize(request=boosted).results[0].alternatives[0].transcript
