"""The core's small parts on their own: chunking, cache, languages, error mapping."""

import os
import sys
import threading

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.core.backend import SAMPLE_RATE, DecodeOptions, Segment, Word
from services.core.cache import ResultCache, cache_key
from services.core.chunking import Piece, pack_spans
from services.core.errors import InvalidAudio, Overloaded, UnsupportedLanguage, to_grpc_status
from services.core.languages import primary_subtag, resolve
from services.core.priority import model_threads
from services.core.vad import Span


def seconds(a: float, b: float) -> Span:
    return Span(int(a * SAMPLE_RATE), int(b * SAMPLE_RATE))


def test_pack_spans_keeps_whole_spans_and_respects_the_limit():
    spans = [seconds(0, 8), seconds(9, 20), seconds(21, 29), seconds(31, 40), seconds(41, 45)]
    pieces = pack_spans(spans, max_seconds=30)
    assert [piece.spans for piece in pieces] == [tuple(spans[:3]), tuple(spans[3:])]
    for piece in pieces:
        assert piece.speech_samples <= 30 * SAMPLE_RATE
    assert [s for piece in pieces for s in piece.spans] == spans  # nothing lost or doubled


def test_a_piece_maps_times_back_over_the_pauses_it_left_out():
    piece = Piece((seconds(2, 5), seconds(7, 9)))
    audio = np.arange(10 * SAMPLE_RATE, dtype=np.float32)
    joined = piece.audio(audio)
    assert len(joined) == 5 * SAMPLE_RATE
    assert joined[3 * SAMPLE_RATE] == 7 * SAMPLE_RATE  # the second span follows the first
    word = Word("late", 3.5, 4.5, 0.9)
    restored = piece.restore(Segment("early late", 0.5, 4.5, 0.8, (word,)))
    assert (restored.start, restored.end) == (2.5, 8.5)
    assert (restored.words[0].start, restored.words[0].end) == (7.5, 8.5)


def test_pack_spans_of_nothing_is_nothing():
    assert pack_spans([], 30) == []


def test_cache_is_lru_and_keys_on_every_option():
    cache = ResultCache(capacity=2)
    a, b, c = (cache_key(b"audio", DecodeOptions(language=x)) for x in ("en", "fr", "de"))
    assert len({a, b, c}) == 3
    assert cache_key(b"audio", DecodeOptions(beam_size=1)) != cache_key(
        b"audio", DecodeOptions(beam_size=2)
    )
    cache.put(a, 1)
    cache.put(b, 2)
    assert cache.get(a) == 1  # a is now the most recent
    cache.put(c, 3)
    assert cache.get(b) is None
    assert cache.get(a) == 1 and cache.get(c) == 3


def test_cache_of_size_zero_keeps_nothing():
    cache = ResultCache(capacity=0)
    cache.put("k", 1)
    assert not cache.enabled and cache.get("k") is None


def test_language_codes_match_on_primary_subtag():
    assert primary_subtag("en-US") == "en"
    assert primary_subtag("ZH_hant_TW") == "zh"
    assert resolve("EN-gb", ("en", "fr"), "svc") == "en"
    assert resolve("", ("en",), "svc") is None
    with pytest.raises(UnsupportedLanguage, match="'xx-YY' is not served by svc; it serves: en"):
        resolve("xx-YY", ("en",), "svc")


def test_overload_status_carries_retry_info_and_pushback():
    status = to_grpc_status(Overloaded("full", retry_after_s=0.25), "req-1")
    assert status.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(status.trailing_metadata)
    assert trailers["grpc-retry-pushback-ms"] == "250"
    assert trailers["x-request-id"] == "req-1"
    rich = rpc_status.from_call(_FakeCall(status))
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in rich.details)
    assert retry.retry_delay.ToMilliseconds() == 250


def test_unexpected_errors_become_internal_without_leaking_detail():
    status = to_grpc_status(KeyError("secret"), "req-2")
    assert status.code is grpc.StatusCode.INTERNAL
    assert "req-2" in status.details and "secret" not in status.details


def test_invalid_audio_is_invalid_argument():
    status = to_grpc_status(InvalidAudio("bad bytes"), "r")
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "bad bytes"


class _FakeCall:
    """What rpc_status.from_call reads from a finished call."""

    def __init__(self, status):
        self._status = status

    def code(self):
        return self._status.code

    def details(self):
        return self._status.details

    def trailing_metadata(self):
        return self._status.trailing_metadata


def test_one_utterance_keeps_all_speech_in_one_piece():
    from services.core.chunking import one_utterance

    spans = [seconds(1, 2), seconds(3, 4.5)]
    assert [p.spans for p in one_utterance(spans, 5)] == [(Span(spans[0].start, spans[1].end),)]
    assert one_utterance([], 5) == []
    with pytest.raises(InvalidAudio, match="one utterance of at most 5 s"):
        one_utterance([seconds(0, 3), seconds(4, 6)], 5)


def test_alternatives_follow_the_segment_and_max_alternatives_caps_them():
    from stt.v1 import stt_pb2

    from services.core.backend import Alternative, Segment, Transcript, Word
    from services.core.convert import to_response
    from services.core.recognizer import Recognition

    word = Word("b", 0.5, 0.9, 0.7)
    segment = Segment(
        "a", 0.0, 1.0, 0.8, (), (Alternative("b", 0.15, (word,)), Alternative("c", 0.05))
    )
    recognition = Recognition(Transcript((segment.shifted(2.0),), "ar"), 3.0)

    def alternatives(**config):
        response = to_response(
            recognition,
            stt_pb2.RecognitionConfig(enable_word_time_offsets=True, **config),
            request_id="r",
            model="m",
            service="s",
            processing_s=0.1,
        )
        return response.results[0].alternatives

    assert [(a.transcript, round(a.confidence, 2)) for a in alternatives()] == [
        ("a", 0.8),
        ("b", 0.15),
        ("c", 0.05),
    ]
    assert alternatives()[1].words[0].start_offset.ToTimedelta().total_seconds() == 2.5
    assert [a.transcript for a in alternatives(max_alternatives=2)] == ["a", "b"]


def _thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="nice is per thread on Linux only")
def test_model_threads_run_below_the_thread_that_made_them():
    base = _thread_nice()
    with model_threads(2, "test-model", 3) as pool:
        lowered = pool.submit(_thread_nice).result(timeout=10)
    with model_threads(1, "test-equal", 0) as pool:
        equal = pool.submit(_thread_nice).result(timeout=10)
    assert lowered == min(19, base + 3)
    assert equal == base
    assert _thread_nice() == base  # the caller keeps its own priority
