"""StreamingRecognize: real clips sent in 100 ms messages, finals, interims, events, bounds."""

import threading
import time

import grpc
import numpy as np
import pytest
from google.protobuf import duration_pb2
from stt.v1 import stt_pb2

from services.core.audio import AudioLimits, AudioSpec, decode
from services.whisper_en.backend import WhisperBackend
from tests.conftest import whisper_settings
from tests.support import clip, encode, metric, request, running, transcript, wer

Response = stt_pb2.StreamingRecognizeResponse
LINEAR16 = stt_pb2.RecognitionConfig.LINEAR16
MESSAGE_S = 0.1


def pcm16(path: str) -> bytes:
    samples = decode(clip(path), AudioSpec(), AudioLimits(10**9, 10**4)).samples
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def stream_config(**options) -> stt_pb2.StreamingRecognitionConfig:
    config = dict(encoding=LINEAR16, sample_rate_hertz=16000, language_code="en")
    config.update(options.pop("config", {}))
    return stt_pb2.StreamingRecognitionConfig(config=stt_pb2.RecognitionConfig(**config), **options)


def messages(config, audio: bytes, chunk: int = 3200, pace_s: float = 0.0, sent=None):
    """The config, then `audio` in `chunk`-byte messages, `pace_s` apart; records when the
    last message left in `sent`."""
    if config is not None:
        yield stt_pb2.StreamingRecognizeRequest(streaming_config=config)
    for start in range(0, len(audio), chunk):
        if pace_s:
            time.sleep(pace_s)
        yield stt_pb2.StreamingRecognizeRequest(audio_content=audio[start : start + chunk])
    if sent is not None:
        sent.append(time.monotonic())


def finals(responses) -> list[stt_pb2.StreamingRecognitionResult]:
    return [r.results[0] for r in responses if r.results and r.results[0].is_final]


def seconds(offset) -> float:
    return offset.ToTimedelta().total_seconds()


@pytest.fixture(scope="module")
def jfk_pcm(audio_dir) -> bytes:
    return pcm16("en/jfk.flac")


def test_finals_match_batch_recognition(whisper_server, jfk_pcm, audio_dir):
    config = stream_config(config={"enable_word_time_offsets": True})
    responses = list(whisper_server.stub.StreamingRecognize(messages(config, jfk_pcm), timeout=300))
    results = finals(responses)
    streamed = " ".join(r.alternatives[0].transcript for r in results)
    batch = transcript(
        whisper_server.stub.Recognize(request(clip("en/jfk.flac"), language_code="en"))
    )
    assert wer(batch, streamed) <= 0.2, (batch, streamed)
    assert all(r.request_id == responses[0].request_id for r in responses)
    last_end = 0.0
    for result in results:
        assert last_end <= seconds(result.result_start_offset) < seconds(result.result_end_offset)
        for word in result.alternatives[0].words:  # offsets from the start of the stream
            assert last_end - 0.05 <= seconds(word.start_offset) <= seconds(word.end_offset)
            last_end = seconds(word.end_offset)
    assert 9.5 < last_end <= 11.0


def test_interim_results_arrive_before_the_audio_ends(whisper_server, audio_dir):
    reading = pcm16("en/librispeech_2412-153948-0000.flac")  # 11.7 s of reading
    # Pauses of up to 1.5 s stay inside one utterance, so its interims have time to come
    # however slow the machine's decodes are.
    config = stream_config(
        interim_results=True,
        enable_voice_activity_events=True,
        speech_end_timeout=duration_pb2.Duration(seconds=1, nanos=500_000_000),
    )
    sent, arrivals = [], []
    call = whisper_server.stub.StreamingRecognize(
        messages(config, reading, pace_s=MESSAGE_S, sent=sent), timeout=300
    )
    for response in call:
        arrivals.append((time.monotonic(), response))
    interims = [(t, r) for t, r in arrivals if r.results and not r.results[0].is_final]
    assert interims, "no interim result"
    assert interims[0][0] < sent[0], "the first interim came after the whole clip was sent"
    assert all(0 <= r.results[0].stability <= 1 for _, r in interims)
    kinds = [r.speech_event_type for _, r in arrivals]
    assert kinds.count(Response.SPEECH_ACTIVITY_BEGIN) == kinds.count(Response.SPEECH_ACTIVITY_END)
    assert kinds.count(Response.SPEECH_ACTIVITY_BEGIN) >= 1
    assert "country" in " ".join(
        r.alternatives[0].transcript for r in finals(r for _, r in arrivals)
    )


def test_single_utterance_closes_after_the_first(whisper_server, audio_dir):
    two_parts = pcm16("en/jfk.flac")  # pauses split it into several utterances
    config = stream_config(single_utterance=True)
    responses = list(
        whisper_server.stub.StreamingRecognize(messages(config, two_parts), timeout=300)
    )
    kinds = [r.speech_event_type for r in responses]
    assert kinds.count(Response.END_OF_SINGLE_UTTERANCE) == 1
    results = finals(responses)
    assert len(results) == 1
    assert kinds.index(Response.END_OF_SINGLE_UTTERANCE) < [
        bool(r.results) for r in responses
    ].index(True)
    assert seconds(results[0].result_end_offset) < 6.0


def test_container_stream_is_decoded_as_it_arrives(whisper_server, audio_dir):
    samples = decode(clip("en/jfk.flac"), AudioSpec(), AudioLimits(10**9, 10**4)).samples
    ogg = encode(samples, 16000, "ogg", "libopus")
    config = stream_config(config={"encoding": 0, "sample_rate_hertz": 0})
    responses = whisper_server.stub.StreamingRecognize(
        messages(config, ogg, chunk=2000), timeout=300
    )
    heard = " ".join(r.alternatives[0].transcript for r in finals(responses)).lower()
    assert "fellow americans" in heard and "your country" in heard


def refused(server, stream, timeout: float = 60) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        list(server.stub.StreamingRecognize(stream, timeout=timeout))
    return error.value


def test_bad_streams_get_their_status(whisper_server, jfk_pcm):
    no_config = refused(whisper_server, messages(None, jfk_pcm[:32000]))
    assert no_config.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "first message" in no_config.details()

    def twice():
        yield from messages(stream_config(), jfk_pcm[:6400])
        yield stt_pb2.StreamingRecognizeRequest(streaming_config=stream_config())

    again = refused(whisper_server, twice())
    assert again.code() is grpc.StatusCode.INVALID_ARGUMENT and "sent once" in again.details()

    garbage = refused(
        whisper_server,
        messages(
            stream_config(config={"encoding": 0, "sample_rate_hertz": 0}), b"\x13\x37" * 40000
        ),
    )
    assert garbage.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be decoded" in garbage.details()

    too_long_pause = stream_config(speech_end_timeout=duration_pb2.Duration(seconds=60))
    pause = refused(whisper_server, messages(too_long_pause, jfk_pcm[:6400]))
    assert (
        pause.code() is grpc.StatusCode.INVALID_ARGUMENT and "speech_end_timeout" in pause.details()
    )

    no_rate = refused(
        whisper_server, messages(stream_config(config={"sample_rate_hertz": 0}), jfk_pcm)
    )
    assert (
        no_rate.code() is grpc.StatusCode.INVALID_ARGUMENT
        and "sample_rate_hertz" in no_rate.details()
    )


@pytest.fixture(scope="module")
def small_stream_server(whisper_model):
    settings = whisper_settings(
        whisper_model, max_concurrency=1, max_queue=0, stream_max_seconds=5, cache_size=0
    )
    with running("whisper_en", settings, WhisperBackend(settings)) as server:
        assert server.wait_loaded()
        yield server


def test_a_stream_over_its_duration_limit_is_out_of_range(small_stream_server, jfk_pcm):
    error = refused(small_stream_server, messages(stream_config(), jfk_pcm))
    assert error.code() is grpc.StatusCode.OUT_OF_RANGE
    assert "limit of 5 s" in error.details()


def test_a_full_gate_refuses_the_stream_at_its_next_decode(small_stream_server, audio_dir):
    busy = small_stream_server.stub.Recognize.future(
        request(clip("en/long_concat_en.flac"), language_code="en"), timeout=300
    )
    wait_for(lambda: metric(small_stream_server, "stt_inflight_requests") == 1)
    error = refused(
        small_stream_server,
        messages(stream_config(), pcm16("en/mr_quilter_picovoice_leopard.wav")[:150000]),
    )
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    busy.cancel()
    wait_for(lambda: metric(small_stream_server, "stt_inflight_requests") == 0)


def test_a_cancelled_stream_frees_everything(small_stream_server, audio_dir):
    audio = pcm16("en/mr_quilter_picovoice_leopard.wav")[:150000]  # under the 5 s limit
    call = small_stream_server.stub.StreamingRecognize(
        messages(stream_config(interim_results=True), audio, pace_s=MESSAGE_S), timeout=300
    )
    wait_for(lambda: metric(small_stream_server, "stt_active_streams") == 1)
    threading.Timer(0.5, call.cancel).start()
    with pytest.raises(grpc.RpcError) as cancelled:
        list(call)
    assert cancelled.value.code() is grpc.StatusCode.CANCELLED
    wait_for(lambda: metric(small_stream_server, "stt_active_streams") == 0)
    wait_for(lambda: metric(small_stream_server, "stt_inflight_requests") == 0)
    done = small_stream_server.stub.Recognize(
        request(clip("en/platforms_one_and_three_picovoice_cheetah.wav"), language_code="en")
    )
    assert "platforms" in transcript(done).lower()


def test_stream_metrics(whisper_server):
    assert metric(whisper_server, "stt_stream_interim_results_total") >= 1
    assert metric(whisper_server, "stt_stream_final_latency_seconds_count") >= 1
    assert metric(whisper_server, "stt_stream_duration_seconds_count") >= 1
    assert metric(whisper_server, "stt_active_streams") == 0


def wait_for(condition, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)
