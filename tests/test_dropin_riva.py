"""NVIDIA Riva's own client (`nvidia-riva-client`), unchanged, against the router in front of
a real whisper_en: offline recognition with word timings, streaming with interim results, the
config query, and refusals raised as the client's gRPC errors."""

import grpc
import pytest
import riva.client
from riva.client.proto import riva_asr_pb2

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


@pytest.fixture(scope="module")
def asr(dropin_router):
    auth = riva.client.Auth(uri=dropin_router.target)
    yield riva.client.ASRService(auth)
    auth.channel.close()


def test_offline_recognize_transcribes_with_word_timings(asr, dropin_router, audio_dir):
    before = metric(dropin_router, "stt_router_requests_total", api="riva", code="OK")
    SPANS.clear()
    config = riva.client.RecognitionConfig(language_code="en-US", enable_word_time_offsets=True)
    response = asr.offline_recognize(clip(JFK), config)
    text = " ".join(r.alternatives[0].transcript for r in response.results)
    assert wer(reference(JFK), text) == 0.0, text
    words = [w for r in response.results for w in r.alternatives[0].words]
    # Riva gives word times in whole milliseconds.
    check_word_timings([(w.word, w.start_time / 1000, w.end_time / 1000) for w in words], 11.0)
    assert all(0 < w.confidence <= 1 for w in words)
    assert response.results[-1].audio_processed <= JFK_SECONDS
    assert response.id.value
    after = metric(dropin_router, "stt_router_requests_total", api="riva", code="OK")
    assert after == before + 1
    spans = [s for s in SPANS.get_finished_spans() if s.attributes.get("stt.api") == "riva"]
    assert [s.name for s in spans] == ["nvidia.riva.asr.RivaSpeechRecognition/Recognize"]


def test_a_riva_request_id_is_the_requests_id(asr, audio_dir):
    request = riva_asr_pb2.RecognizeRequest(
        config=riva.client.RecognitionConfig(language_code="en"), audio=clip(JFK)
    )
    request.id.value = "riva-request-7"
    response, call = asr.stub.Recognize.with_call(request, timeout=60)
    assert response.id.value == "riva-request-7"
    assert ("x-request-id", "riva-request-7") in call.trailing_metadata()


def test_streaming_sends_interim_results_then_finals(asr, audio_dir):
    config = riva.client.StreamingRecognitionConfig(
        config=riva.client.RecognitionConfig(
            encoding=riva.client.AudioEncoding.LINEAR_PCM,
            sample_rate_hertz=16000,
            language_code="en-US",
            enable_word_time_offsets=True,
            # Riva's end of utterance: pauses of up to 1.5 s stay inside one utterance.
            endpointing_config=riva_asr_pb2.EndpointingConfig(stop_history=1500),
        ),
        interim_results=True,
    )
    results = [
        result
        for response in asr.streaming_response_generator(paced(pcm16(READING)), config)
        for result in response.results
    ]
    kinds = [result.is_final for result in results]
    assert False in kinds and True in kinds, kinds
    assert kinds.index(False) < kinds.index(True), "no interim came before the first final"
    finals = [r for r in results if r.is_final]
    text = " ".join(r.alternatives[0].transcript for r in finals)
    assert wer(reference(READING), text) <= PER_CLIP_WER, text
    words = [w for r in finals for w in r.alternatives[0].words]
    check_word_timings([(w.word, w.start_time / 1000, w.end_time / 1000) for w in words], 11.7)


def test_config_query_lists_the_models_and_languages(asr):
    reply = asr.stub.GetRivaSpeechRecognitionConfig(
        riva_asr_pb2.RivaSpeechRecognitionConfigRequest(), timeout=10
    )
    # As a Riva server lists a model: one entry for offline use, one for streaming.
    entries = [(c.model_name, c.parameters) for c in reply.model_config]
    assert [(name, p["type"]) for name, p in entries] == [
        ("whisper_en", "offline"),
        ("whisper_en", "online"),
    ]
    for _, parameters in entries:
        assert "en" in parameters["language_code"].split(",")
        assert "es" in parameters["language_code"].split(",")  # Whisper is multilingual
        assert parameters["routes"] == "en,es"
        assert parameters["sample_rate"] == "16000"
    with pytest.raises(grpc.RpcError) as refused:
        asr.stub.GetRivaSpeechRecognitionConfig(
            riva_asr_pb2.RivaSpeechRecognitionConfigRequest(model_name="conformer"), timeout=10
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_listed_model_pins_the_backend(asr, audio_dir):
    config = riva.client.RecognitionConfig(model="whisper_en", language_code="en")
    response = asr.offline_recognize(clip(JFK), config)
    assert response.results[0].alternatives[0].language_code == ["en"]
    assert (
        wer(reference(JFK), " ".join(r.alternatives[0].transcript for r in response.results)) == 0
    )


@pytest.mark.parametrize(
    ("audio", "config", "detail"),
    [
        (b"this is not audio" * 100, {"language_code": "en-US"}, ""),
        (None, {"language_code": "fr-FR"}, "'fr-FR' is not served"),
        (None, {"language_code": "en", "model": "conformer"}, "config.model 'conformer'"),
        (
            None,
            {"language_code": "en", "custom_configuration": {"beam": "4"}},
            "config.custom_configuration (beam)",
        ),
    ],
)
def test_refusals_are_invalid_argument(asr, audio_dir, audio, config, detail):
    with pytest.raises(grpc.RpcError) as refused:
        asr.offline_recognize(audio or clip(JFK), riva.client.RecognitionConfig(**config))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert detail in refused.value.details()


def test_streaming_with_diarization_is_refused_by_name(asr):
    config = riva.client.StreamingRecognitionConfig(
        config=riva.client.RecognitionConfig(language_code="en-US")
    )
    riva.client.add_speaker_diarization_to_config(config, True, 2)
    with pytest.raises(grpc.RpcError) as refused:
        list(asr.streaming_response_generator(iter([b"\0" * 3200]), config))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    field = "streaming_config.config.diarization_config.enable_speaker_diarization"
    assert field in refused.value.details()
