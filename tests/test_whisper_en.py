"""whisper_en end to end: the real Whisper base model over gRPC on loopback, real speech."""

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from stt.v1 import stt_pb2

from services.whisper_en.backend import WhisperBackend
from tests.conftest import whisper_settings
from tests.support import (
    clip,
    encode,
    http_get,
    manifest,
    metric,
    request,
    running,
    tone,
    transcript,
    wer,
)

# Whisper base on clean read speech: LibriSpeech test-clean WER is about 5% for this model.
# Per clip we allow 0.30, because a short clip has 8-20 words and one digit written as a
# number ("1" for "one", which this normalisation does not undo) costs 5-12% by itself; over
# all clips together the bound is 0.08. jfk, the model's best-known clip, must be exact.
PER_CLIP_WER = 0.30
OVERALL_WER = 0.08


def english_clips():
    return [row for row in manifest() if row["language"].startswith("en") and row["transcript"]]


@pytest.mark.slow
def test_word_error_rate_on_real_speech(whisper_server, audio_dir):
    errors, total = 0.0, 0
    for row in english_clips():
        response = whisper_server.stub.Recognize(request(clip(row["path"]), language_code="en-US"))
        score = wer(row["transcript"], transcript(response))
        assert score <= PER_CLIP_WER, (row["path"], score, transcript(response))
        if row["path"] == "en/jfk.flac":
            assert score == 0.0, transcript(response)
        size = len(row["transcript"].split())
        errors, total = errors + score * size, total + size
    assert errors / total <= OVERALL_WER


def test_response_fields(whisper_server, audio_dir):
    config = dict(enable_word_time_offsets=True, enable_word_confidence=True)
    response = whisper_server.stub.Recognize(
        request(clip("en/jfk.flac"), **config), metadata=(("x-request-id", "jfk-1"),)
    )
    assert response.language_code == "en" and response.language_probability > 0.5
    assert response.request_id == "jfk-1"
    assert response.service == "whisper_en" and response.model
    assert response.audio_duration.ToTimedelta().total_seconds() == pytest.approx(11.0, abs=0.01)
    assert response.total_billed_time == response.audio_duration
    assert response.processing_time.ToTimedelta().total_seconds() > 0
    words, last_end = [], 0.0
    for result in response.results:
        assert result.language_code == "en"
        best = result.alternatives[0]
        assert 0 < best.confidence <= 1
        for word in best.words:
            start = word.start_offset.ToTimedelta().total_seconds()
            end = word.end_offset.ToTimedelta().total_seconds()
            assert last_end - 0.01 <= start <= end <= 11.0
            assert 0 < word.confidence <= 1
            last_end = end
            words.append(word.word)
    assert " ".join(words).startswith("And so my fellow Americans")


def test_words_are_left_out_unless_asked_for(whisper_server, audio_dir):
    response = whisper_server.stub.Recognize(request(clip("en/jfk.flac"), language_code="en"))
    assert response.results and not any(r.alternatives[0].words for r in response.results)


def test_detects_the_language_when_none_is_given(whisper_server, audio_dir):
    arabic = clip("ar/keywords_hummus_coffee_octopus_toaster.wav")
    response = whisper_server.stub.Recognize(request(arabic))
    assert response.language_code == "ar"


def test_cache_hit_returns_the_same_result(whisper_server, audio_dir):
    content = clip("en/mr_quilter_picovoice_leopard.wav")
    first = whisper_server.stub.Recognize(request(content, language_code="en"))
    hits_before = metric(whisper_server, "stt_cache_hits_total")
    second = whisper_server.stub.Recognize(request(content, language_code="en"))
    assert metric(whisper_server, "stt_cache_hits_total") == hits_before + 1
    assert list(second.results) == list(first.results)
    # A different option is a different answer: not served from the cache.
    whisper_server.stub.Recognize(request(content, language_code="en", enable_word_confidence=True))
    assert metric(whisper_server, "stt_cache_hits_total") == hits_before + 1


def test_no_speech_gives_no_results(whisper_server):
    content = encode(tone(3.0), 16000, "wav", "pcm_s16le")
    response = whisper_server.stub.Recognize(request(content, language_code="en"))
    assert list(response.results) == []
    assert response.audio_duration.ToTimedelta().total_seconds() == pytest.approx(3.0, abs=0.01)


def test_silent_audio_gives_no_results(whisper_server):
    silent = request(b"\x00\x00" * 16000, encoding=1, sample_rate_hertz=16000)
    for vad in (True, False):  # without the VAD too: silence never reaches the model
        silent.config.enable_voice_activity_detection = vad
        response = whisper_server.stub.Recognize(silent, timeout=30)
        assert list(response.results) == []
        assert response.audio_duration.ToTimedelta().total_seconds() == pytest.approx(1.0)


BAD_REQUESTS = {
    "no audio": (stt_pb2.RecognizeRequest(), "audio is empty"),
    "garbage": (request(b"\x00\x01garbage" * 100), "could not be decoded"),
    "truncated": ("truncated", "truncated"),
    "wrong rate": ("wrong rate", "sample_rate_hertz is 8000"),
    "raw without rate": (request(b"\x01\x02" * 800, encoding=1), "needs sample_rate_hertz"),
    "unknown language": ("unknown language", "'tlh' is not served"),
    "beam too wide": ("beam", "beam_size must be"),
    "negative alternatives": ("alternatives", "max_alternatives must be >= 0"),
    "phrases": ("phrases", "does not score speech_contexts phrases"),
}


def bad_request(case: str) -> stt_pb2.RecognizeRequest:
    built, _ = BAD_REQUESTS[case]
    if not isinstance(built, str):
        return built
    jfk = clip("en/mr_quilter_picovoice_leopard.wav")
    return {
        "truncated": request(jfk[: len(jfk) // 3]),
        "wrong rate": request(jfk, sample_rate_hertz=8000),
        "unknown language": request(jfk, language_code="tlh"),
        "beam": request(jfk, decoding=stt_pb2.DecodingConfig(beam_size=99)),
        "alternatives": request(jfk, max_alternatives=-1),
        "phrases": request(jfk, speech_contexts=[stt_pb2.SpeechContext(phrases=["quilter"])]),
    }[built]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_input_is_invalid_argument_and_the_server_goes_on(whisper_server, audio_dir, case):
    with pytest.raises(grpc.RpcError) as refused:
        whisper_server.stub.Recognize(bad_request(case), timeout=30)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert BAD_REQUESTS[case][1] in refused.value.details()
    good = whisper_server.stub.Recognize(
        request(clip("en/platforms_one_and_three_picovoice_cheetah.wav"), language_code="en")
    )
    assert "platforms" in transcript(good).lower()


def test_oversized_audio_is_invalid_argument(whisper_model, audio_dir):
    settings = whisper_settings(whisper_model, max_audio_bytes=100_000, max_audio_seconds=5)
    with running("whisper_en", settings, WhisperBackend(settings)) as server:
        assert server.wait_loaded()
        for content, message in [
            (
                clip("en/mr_quilter_picovoice_leopard.wav"),
                "over this service's limit of 100000 bytes",
            ),
            (clip("en/platforms_one_and_three_picovoice_cheetah.wav")[:90_000], "truncated"),
            (clip("ar/keywords_hummus_coffee_octopus_toaster.wav")[:99_000], "truncated"),
        ]:
            with pytest.raises(grpc.RpcError) as refused:
                server.stub.Recognize(request(content))
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert message in refused.value.details()
        long_wav = encode(tone(6.0, 8000), 8000, "wav", "pcm_s16le")
        with pytest.raises(grpc.RpcError, match="limit of 5 s"):
            server.stub.Recognize(request(long_wav))


def test_a_stream_without_audio_ends_cleanly(whisper_server):
    config = stt_pb2.StreamingRecognitionConfig(config=stt_pb2.RecognitionConfig())
    messages = iter([stt_pb2.StreamingRecognizeRequest(streaming_config=config)])
    assert list(whisper_server.stub.StreamingRecognize(messages, timeout=30)) == []


def test_service_info(whisper_server):
    info = whisper_server.stub.GetServiceInfo(stt_pb2.GetServiceInfoRequest())
    assert info.service == "whisper_en" and info.ready and info.state == info.SERVING
    assert "en" in info.language_codes and "ar" in info.language_codes
    assert info.device == "cpu" and info.precision.startswith("int8")
    assert info.max_concurrency == 4 and info.max_queue == 2
    assert info.version and info.streaming_supported and info.max_stream_seconds == 3600


def test_health_and_reflection(whisper_server):
    health = health_pb2_grpc.HealthStub(whisper_server.channel)
    for name in ("", "stt.v1.Speech"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(whisper_server.channel)
    ask = reflection_pb2.ServerReflectionRequest(list_services="")
    services = {
        s.name
        for r in reflect.ServerReflectionInfo(iter([ask]))
        for s in r.list_services_response.service
    }
    assert {"stt.v1.Speech", "grpc.health.v1.Health"} <= services
    assert http_get(whisper_server, "/readyz") == (200, "serving\n")
    assert http_get(whisper_server, "/healthz") == (200, "serving\n")


def test_metrics_count_what_happened(whisper_server, audio_dir):
    def ok_count():
        return metric(
            whisper_server, "stt_requests_total", method="Recognize", code="OK", language="en"
        )

    def bad_count():
        return metric(whisper_server, "stt_requests_total", code="INVALID_ARGUMENT")

    ok, bad = ok_count(), bad_count()
    audio_before = metric(whisper_server, "stt_audio_seconds_total", language="en")
    whisper_server.stub.Recognize(request(clip("en/ljspeech_LJ050-0131.wav"), language_code="en"))
    with pytest.raises(grpc.RpcError):
        whisper_server.stub.Recognize(request(b"garbage!" * 10))
    assert ok_count() == ok + 1 and bad_count() == bad + 1
    audio_after = metric(whisper_server, "stt_audio_seconds_total", language="en")
    assert audio_after - audio_before == pytest.approx(7.658, abs=0.01)
    assert metric(whisper_server, "stt_ready") == 1
    assert metric(whisper_server, "stt_model_load_seconds") > 0
    assert metric(whisper_server, "stt_real_time_factor_count") >= 1
    assert metric(whisper_server, "stt_stage_duration_seconds_count", stage="inference") >= 1
    assert metric(whisper_server, "stt_inflight_requests") == 0
