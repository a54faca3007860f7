"""hausa_stt and arabic_words end to end: the real services over gRPC on loopback, on tiny
models of both architectures (and real checkpoints when the environment names them)."""

import threading

import grpc
import pytest
from stt.v1 import stt_pb2

from services.core.backend import SAMPLE_RATE
from services.core.errors import InvalidConfig
from tests import ctc_support
from tests.ctc_support import CASES, TINY_CASES, check_timings, model_dir, seconds, settings
from tests.support import clip, encode, request, running, tone
from tests.test_whisper_en import metric


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def served(request, tiny_models, audio_dir):
    """(case, server): one warm server per case for this module's tests."""
    case = request.param
    config = settings(case, model_dir(case, tiny_models))
    with running(case.service, config, case.module.Backend(config)) as server:
        assert server.wait_loaded(), f"{case.service} failed to load"
        yield case, server


def words_request(content: bytes, case, **config) -> stt_pb2.RecognizeRequest:
    return request(
        content,
        language_code=case.language,
        enable_word_time_offsets=True,
        enable_word_confidence=True,
        **config,
    )


def test_recognises_real_speech_with_timed_words(served):
    case, server = served
    response = server.stub.Recognize(words_request(clip(case.clip), case))
    assert response.service == case.service and response.language_code == case.language
    duration = seconds(response.audio_duration)
    words = check_timings(response, duration)
    assert words, "no words in a clip of speech"
    assert all(r.language_code == case.language for r in response.results)
    info = server.stub.GetServiceInfo(stt_pb2.GetServiceInfoRequest())
    assert info.ready and list(info.language_codes) == [case.language]
    assert info.device == "cpu" and info.precision == "float32"


def test_browser_recordings_webm_and_ogg(served):
    case, server = served
    from services.core.audio import AudioLimits, AudioSpec, decode

    samples = decode(clip(case.clip), AudioSpec(), AudioLimits(10**8, 60)).samples
    for container in ("webm", "ogg"):
        content = encode(samples, SAMPLE_RATE, container, "libopus")
        response = server.stub.Recognize(words_request(content, case))
        check_timings(response, seconds(response.audio_duration))
        assert response.results


def test_language_is_served_without_being_named(served):
    case, server = served
    response = server.stub.Recognize(request(clip(case.clip)))
    assert response.language_code == case.language and response.language_probability == 1.0


BAD = {
    "garbage": (dict(), b"\x00\x01garbage" * 100, "could not be decoded"),
    "other language": (dict(language_code="en"), None, "is not served"),
    "beam search": (dict(decoding=stt_pb2.DecodingConfig(beam_size=5)), None, "greedily"),
    "sampling": (dict(decoding=stt_pb2.DecodingConfig(temperature=0.5)), None, "not sample"),
    "prompt": (dict(decoding=stt_pb2.DecodingConfig(initial_prompt="x")), None, "no prompt"),
    "unwritable phrase": (
        dict(speech_contexts=[stt_pb2.SpeechContext(phrases=["Q#9 ok"])]),
        None,
        "cannot write",
    ),
    "empty phrase": (dict(speech_contexts=[stt_pb2.SpeechContext(phrases=[" "])]), None, "1 to"),
    "too many phrases": (
        dict(speech_contexts=[stt_pb2.SpeechContext(phrases=["a"] * 101)]),
        None,
        "at most 100",
    ),
}


@pytest.mark.parametrize("case_name", BAD, ids=list(BAD))
def test_bad_input_is_invalid_argument_and_the_server_goes_on(served, case_name):
    case, server = served
    config, content, message = BAD[case_name]
    with pytest.raises(grpc.RpcError) as refused:
        server.stub.Recognize(request(content or clip(case.clip), **config), timeout=30)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in refused.value.details()
    assert server.stub.Recognize(request(clip(case.clip))).results


def test_phrases_longer_than_one_utterance_are_refused(tiny_models, audio_dir):
    case = TINY_CASES[0]
    config = settings(case, model_dir(case, tiny_models), max_chunk_seconds=5)
    with running(case.service, config, case.module.Backend(config)) as server:
        assert server.wait_loaded()
        contexts = [stt_pb2.SpeechContext(phrases=["kano"])]
        with pytest.raises(grpc.RpcError) as refused:
            server.stub.Recognize(request(clip(case.clip), speech_contexts=contexts))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "one utterance of at most 5 s" in refused.value.details()


class HeldBackend:
    """Mixed into a service's backend: once `go` is cleared, each inference waits for it."""

    def __init__(self, config):
        super().__init__(config)
        self.started = threading.Event()
        self.go = threading.Event()
        self.go.set()  # the warm-up runs freely

    def transcribe(self, audio, options, cancellation):
        self.started.set()
        assert self.go.wait(30), "the test never let the inference go"
        return super().transcribe(audio, options, cancellation)


@pytest.mark.parametrize("case", TINY_CASES, ids=[c.id for c in TINY_CASES])
def test_overload_is_resource_exhausted(tiny_models, audio_dir, case):
    config = settings(case, model_dir(case, tiny_models), max_concurrency=1, max_queue=0)
    backend = type("Held", (HeldBackend, case.module.Backend), {})(config)
    with running(case.service, config, backend) as server:
        assert server.wait_loaded()
        backend.go.clear()
        backend.started.clear()
        busy = server.stub.Recognize.future(request(clip(case.clip)))
        assert backend.started.wait(10)
        with pytest.raises(grpc.RpcError) as refused:
            server.stub.Recognize(request(clip(case.clip)), timeout=5)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert int(dict(refused.value.trailing_metadata())["grpc-retry-pushback-ms"]) > 0
        backend.go.set()
        assert busy.result(timeout=30).results
        assert metric(server, "stt_rejections_total", reason="overloaded") == 1


def test_silence_gives_no_results(served):
    _, server = served
    response = server.stub.Recognize(request(encode(tone(2.0), 16000, "wav", "pcm_s16le")))
    assert list(response.results) == []


def test_backend_refuses_options_before_the_queue(tiny_models):
    case = TINY_CASES[1]
    backend = case.module.Backend(settings(case, model_dir(case, tiny_models)))
    backend.load()
    from services.core.backend import DecodeOptions

    backend.check(DecodeOptions(beam_size=1, temperature=0.0, phrases=("قهوة",)))
    with pytest.raises(InvalidConfig):
        backend.check(DecodeOptions(phrases=("coffee",)))


def test_cases_cover_both_architectures():
    assert {c.tiny for c in ctc_support.TINY_CASES} == {"w2v_bert", "wav2vec2"}
