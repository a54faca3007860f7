"""whisper_en with dynamic batching: requests decoded in batches with others answer exactly as
they do alone (text, segment and word times, confidences), a request that gives up leaves its
batch without failing the others, and streams' short-window decodes batch too."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import grpc
import numpy as np
import pytest

from services.core.audio import AudioLimits, AudioSpec, decode
from services.core.backend import SAMPLE_RATE, DecodeOptions
from services.core.batching import Batcher, BatchLimits
from services.core.cancellation import Cancellation
from services.core.fanout import Fanout
from services.whisper_en.backend import WhisperBackend
from tests.conftest import whisper_settings
from tests.support import clip, encode, metric, request, running

CLIPS = (
    "en/jfk.flac",
    "en/mr_quilter_picovoice_leopard.wav",
    "en/platforms_one_and_three_picovoice_cheetah.wav",
    "en/librispeech_1995-1837-0001.wav",
    "en/ljspeech_LJ050-0131.wav",
)
LONG_S = 70.0  # of long_concat_en.flac: three pieces, so one request batches with itself too
CONFIG = dict(language_code="en", enable_word_time_offsets=True, enable_word_confidence=True)


@pytest.fixture(scope="module")
def contents(audio_dir) -> list[bytes]:
    samples = decode(clip("en/long_concat_en.flac"), AudioSpec(), AudioLimits(10**9, 10**4))
    long = encode(samples.samples[: int(LONG_S * SAMPLE_RATE)], SAMPLE_RATE, "flac", "flac")
    return [clip(path) for path in CLIPS] + [long]


@pytest.fixture(scope="module")
def alone(whisper_model, contents):
    """Each request's answer from a service that decodes one piece at a time."""
    settings = whisper_settings(whisper_model, max_batch_size=1, max_concurrency=1, cache_size=0)
    with running("whisper_en", settings, WhisperBackend(settings)) as server:
        assert server.wait_loaded()
        return [list(server.stub.Recognize(request(c, **CONFIG)).results) for c in contents]


@pytest.fixture(scope="module")
def batching(whisper_model):
    settings = whisper_settings(
        whisper_model,
        max_batch_size=8,
        batch_window_ms=300,
        max_concurrency=8,
        max_queue=8,
        cache_size=0,
    )
    with running("whisper_en", settings, WhisperBackend(settings)) as server:
        assert server.wait_loaded()
        yield server


def test_requests_batched_together_answer_as_they_do_alone(batching, contents, alone):
    with ThreadPoolExecutor(len(contents)) as pool:
        calls = [pool.submit(batching.stub.Recognize, request(c, **CONFIG)) for c in contents]
        answers = [list(call.result(timeout=300).results) for call in calls]
    for expected, answer in zip(alone, answers, strict=True):
        assert answer == expected  # protobuf equality: every text, time and confidence
    batches = metric(batching, "stt_batch_size_count", stage="generate")
    items = metric(batching, "stt_batch_size_sum", stage="generate")
    assert batches and items / batches > 1.5, (items, batches)  # they did share passes
    assert metric(batching, "stt_batch_wait_seconds_count", stage="encode") >= len(contents)
    assert metric(batching, "stt_inflight_requests") == 0


def test_a_request_that_gives_up_leaves_its_batch_and_the_others_are_unharmed(
    batching, contents, alone
):
    with ThreadPoolExecutor(len(contents)) as pool:
        calls = [pool.submit(batching.stub.Recognize, request(c, **CONFIG)) for c in contents]
        late = pool.submit(batching.stub.Recognize, request(contents[-1], **CONFIG), timeout=0.5)
        with pytest.raises(grpc.RpcError) as gave_up:
            late.result(timeout=60)
        assert gave_up.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        answers = [list(call.result(timeout=300).results) for call in calls]
    assert answers == alone


@pytest.fixture(scope="module")
def jfk(audio_dir) -> np.ndarray:
    return decode(clip("en/jfk.flac"), AudioSpec(), AudioLimits(10**9, 10**4)).samples


def test_short_window_decodes_of_streams_batch_and_match_their_lone_decodes(whisper_model, jfk):
    """What concurrent streams send: utterances of different lengths, prompts and prefixes."""
    alone_backend = _backend(whisper_model, BatchLimits(1, 0.0, 1))
    batcher = Batcher(BatchLimits(8, 0.3, 1), metrics=_Sizes())
    batched_backend = _backend(whisper_model, batcher=batcher)
    base = DecodeOptions(language="en", beam_size=1, short_window=True, word_timestamps=True)
    cuts = [
        (jfk[: int(4.2 * SAMPLE_RATE)], replace(base, prefix="And so")),
        (jfk[: int(4.6 * SAMPLE_RATE)], base),
        (jfk[int(3.5 * SAMPLE_RATE) : int(8.2 * SAMPLE_RATE)], replace(base, context="my fellow")),
        (jfk[int(5.0 * SAMPLE_RATE) :], replace(base, prefix="ask not")),
    ]
    expected = [alone_backend.transcribe(a, o, Cancellation()) for a, o in cuts]
    cancellation = Cancellation()

    def decode_one(cut):
        with batcher.producing(object()):
            return batched_backend.transcribe(*cut, cancellation)

    assert Fanout(4, 0).map(decode_one, cuts, 4, cancellation) == expected
    assert max(batcher._metrics.sizes["generate"]) >= 2


class _Sizes:
    def __init__(self):
        self.sizes: dict[str, list[int]] = {}

    def batch_ran(self, kind, size, waits_s):
        self.sizes.setdefault(kind, []).append(size)


def _backend(model, limits=None, batcher=None) -> WhisperBackend:
    backend = WhisperBackend(whisper_settings(model))
    backend.attach(batcher or Batcher(limits))
    backend.load()
    return backend
