"""What Google's v1 samples and Riva's scripts send, with their official clients unchanged,
against a router routed as `stt up` routes (English and `*` to whisper_en): every Google model
name, bare words, the profanity filter, silence, any language Whisper knows, alternative
language codes, and Riva's model list as its `--list-models` reads it. Speech is made with
espeak-ng."""

import grpc
import openai
import pytest
import riva.client
from google.api_core import exceptions
from google.cloud import speech_v1
from google.cloud.speech_v1.types import cloud_speech
from riva.client.proto import riva_asr_pb2
from stt.v1 import stt_pb2

from services.core.names import MODEL_HEADER, SERVICE_HEADER
from services.router.dropin.google_convert import ROUTED_MODELS
from tests.conformance_support import call, silence
from tests.support import espeak, request, transcript

Config = speech_v1.RecognitionConfig
BRIDGE = "How old is the Brooklyn Bridge?"
SWEARING = "Oh shit, I forgot my keys."
SPANISH = "Buenos días, me llamo Carlos y vivo en Madrid."
GERMAN = "Guten Morgen, wie geht es Ihnen heute?"


@pytest.fixture(scope="module")
def riva_asr(star_router):
    auth = riva.client.Auth(uri=star_router.target)
    yield riva.client.ASRService(auth)
    auth.channel.close()


@pytest.fixture(scope="module")
def clips():
    return {
        "bridge": espeak(BRIDGE),
        "swearing": espeak(SWEARING),
        "spanish": espeak(SPANISH, voice="es"),
        "german": espeak(GERMAN, voice="de"),
    }


def google_words(response) -> list[str]:
    return [w.word for r in response.results for w in r.alternatives[0].words]


def test_every_google_model_name_is_routed_by_language_and_says_what_served(google_v1, clips):
    audio = speech_v1.RecognitionAudio(content=clips["bridge"])
    names = [name for name in ROUTED_MODELS if name]
    assert len(names) == 8  # every v1 model name
    for name in names:
        for enhanced in (False, True):
            config = Config(language_code="en-US", model=name, use_enhanced=enhanced)
            # The client's own transport, to read the trailing metadata of the answer.
            response, rpc = google_v1.transport.recognize.with_call(
                cloud_speech.RecognizeRequest(config=config, audio=audio), timeout=120
            )
            assert "Brooklyn" in response.results[0].alternatives[0].transcript, name
            served = dict(rpc.trailing_metadata())
            assert served[SERVICE_HEADER] == "whisper_en" and served[MODEL_HEADER], served


def test_words_are_bare_and_the_transcript_keeps_its_punctuation(
    google_v1, riva_asr, star_router, clips
):
    config = Config(language_code="en-US", enable_word_time_offsets=True)
    response = google_v1.recognize(
        config=config, audio=speech_v1.RecognitionAudio(content=clips["bridge"]), timeout=120
    )
    assert response.results[0].alternatives[0].transcript.endswith("Bridge?")
    assert google_words(response)[-1] == "Bridge"
    assert all(w.strip("?,.!") == w for w in google_words(response))
    words_asked = riva.client.RecognitionConfig(
        language_code="en-US", enable_word_time_offsets=True
    )
    offline = riva_asr.offline_recognize(clips["bridge"], words_asked)
    assert offline.results[0].alternatives[0].transcript.endswith("?")
    assert offline.results[0].alternatives[0].words[-1].word == "Bridge"
    # stt.v1: bare words are an option; the words keep the model's punctuation without it.
    asked = request(clips["bridge"], language_code="en", enable_word_time_offsets=True)
    as_written = star_router.stub.Recognize(asked, timeout=120)
    assert as_written.results[0].alternatives[0].words[-1].word == "Bridge?"
    asked.config.bare_words = True
    bare = star_router.stub.Recognize(asked, timeout=120)
    assert bare.results[0].alternatives[0].words[-1].word == "Bridge"
    assert transcript(bare) == transcript(as_written)


def test_the_profanity_filter_masks_as_google_does(google_v1, riva_asr, star_router, clips):
    audio = speech_v1.RecognitionAudio(content=clips["swearing"])
    config = Config(language_code="en-US", enable_word_time_offsets=True)
    plain = google_v1.recognize(config=config, audio=audio, timeout=120)
    assert "shit," in plain.results[0].alternatives[0].transcript
    config.profanity_filter = True
    masked = google_v1.recognize(config=config, audio=audio, timeout=120)
    text = masked.results[0].alternatives[0].transcript
    assert "s***," in text and "shit" not in text
    assert text.replace("s***", "shit") == plain.results[0].alternatives[0].transcript
    assert "s***" in google_words(masked) and "keys" in google_words(masked)
    offline = riva_asr.offline_recognize(
        clips["swearing"],
        riva.client.RecognitionConfig(language_code="en-US", profanity_filter=True),
    )
    assert "s***," in offline.results[0].alternatives[0].transcript
    asked = request(clips["swearing"], language_code="en", profanity_filter=True)
    assert "s***," in transcript(star_router.stub.Recognize(asked, timeout=120))


def test_silent_audio_is_ok_with_no_results_in_every_api(google_v1, riva_asr, star_router):
    quiet = silence()
    google_answer = google_v1.recognize(
        config=Config(language_code="en-US"),
        audio=speech_v1.RecognitionAudio(content=quiet),
        timeout=60,
    )
    assert list(google_answer.results) == []
    assert google_answer.total_billed_time.total_seconds() == pytest.approx(2.0)
    riva_answer = riva_asr.offline_recognize(quiet, riva.client.RecognitionConfig())
    assert list(riva_answer.results) == []
    assert (
        list(star_router.stub.Recognize(request(quiet, language_code="en"), timeout=60).results)
        == []
    )
    # No language given: nothing to detect one in, and still no error.
    assert list(star_router.stub.Recognize(request(quiet), timeout=60).results) == []
    with openai.OpenAI(
        base_url=f"{star_router.http}/v1", api_key="unused", max_retries=0
    ) as client:
        answer = client.audio.transcriptions.create(file=("quiet.wav", quiet), model="whisper-1")
    assert answer.text == ""


def test_any_language_whisper_knows_is_served_and_an_unknown_code_is_refused(
    riva_asr, google_v1, star_router, clips
):
    german = riva_asr.offline_recognize(
        clips["german"], riva.client.RecognitionConfig(language_code="de-DE")
    )
    assert "Morgen" in german.results[0].alternatives[0].transcript
    spanish = google_v1.recognize(
        config=Config(language_code="es-US"),
        audio=speech_v1.RecognitionAudio(content=clips["spanish"]),
        timeout=120,
    )
    assert "Madrid" in spanish.results[0].alternatives[0].transcript
    with pytest.raises(grpc.RpcError) as refused:
        riva_asr.offline_recognize(
            clips["german"], riva.client.RecognitionConfig(language_code="xx-YY")
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "'xx-YY' is not served by whisper_en" in refused.value.details()
    info = star_router.stub.GetServiceInfo(stt_pb2.GetServiceInfoRequest(), timeout=10)
    assert {"en", "de", "es", "ru", "ha", "ar"} <= set(info.language_codes)
    assert "*" not in info.language_codes  # the languages behind `*`, not the pattern
    assert {r.pattern: list(r.backends) for r in info.routes} == {
        "en": ["whisper_en"],
        "*": ["whisper_en"],
    }
    with openai.OpenAI(
        base_url=f"{star_router.http}/v1", api_key="unused", max_retries=0
    ) as client:
        models = {m.id: m for m in client.models.list()}
    assert "ru" in models["whisper-1"].languages and "ru" in models["whisper_en"].languages


def test_alternative_language_codes_choose_among_the_codes_given(google_v1, star_router, clips):
    config = Config(language_code="en-US", alternative_language_codes=["es-ES", "de-DE"])
    spanish = google_v1.recognize(
        config=config, audio=speech_v1.RecognitionAudio(content=clips["spanish"]), timeout=120
    )
    assert spanish.results[0].language_code == "es-ES"
    assert "Madrid" in spanish.results[0].alternatives[0].transcript
    english = google_v1.recognize(
        config=config, audio=speech_v1.RecognitionAudio(content=clips["bridge"]), timeout=120
    )
    assert english.results[0].language_code == "en-US"
    # Detection among the candidates only: German speech, English or Spanish asked for.
    detect = stt_pb2.DetectLanguageRequest(
        config=stt_pb2.RecognitionConfig(language_code="en", alternative_language_codes=["es"]),
        audio=stt_pb2.RecognitionAudio(content=clips["german"]),
    )
    assert star_router.stub.DetectLanguage(detect, timeout=60).language_code in ("en", "es")
    detect.config.alternative_language_codes.append("de-AT")
    assert star_router.stub.DetectLanguage(detect, timeout=60).language_code == "de-AT"
    with pytest.raises(exceptions.InvalidArgument) as refused:
        google_v1.recognize(
            config=Config(language_code="en-US", alternative_language_codes=["a", "b", "c", "d"]),
            audio=speech_v1.RecognitionAudio(content=clips["bridge"]),
            timeout=60,
        )
    assert "at most 3" in refused.value.message


def test_riva_s_list_models_finds_every_model_by_kind_and_language(riva_asr):
    """What `transcribe_file_offline.py --list-models` (and the streaming script's) does with
    the answer: keep the entries of its type exactly, and group them by language code."""
    reply = riva_asr.stub.GetRivaSpeechRecognitionConfig(
        riva_asr_pb2.RivaSpeechRecognitionConfigRequest(), timeout=10
    )
    for kind in ("offline", "online"):
        listed: dict[str, list[str]] = {}
        for config in reply.model_config:
            if config.parameters["type"] == kind:
                listed.setdefault(config.parameters["language_code"], []).append(config.model_name)
        assert list(listed.values()) == [["whisper_en"]], kind
        assert {"en", "de", "es"} <= set(next(iter(listed)).split(","))


def test_a_two_channel_wav_is_mixed_without_separate_recognition(google_v1):
    both, _ = call("Thank you for calling, how can I help?", "I would like to cancel my order.")
    response = google_v1.recognize(
        config=Config(language_code="en-US", audio_channel_count=2),
        audio=speech_v1.RecognitionAudio(content=both),
        timeout=60,
    )
    assert response.results and {r.channel_tag for r in response.results} == {0}
    assert "cancel" in " ".join(r.alternatives[0].transcript for r in response.results)
