"""The parts of the jobs that need no model: chunk plans and offsets, probing audio up front,
reading audio by uri, the checks of LongRunningRecognize, page tokens, the quota error, and a
worker's patience with a refusing service (a real gRPC server on loopback that refuses)."""

import asyncio
import contextlib
import functools
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2, status_pb2
from pydantic import ValidationError
from stt.v1 import stt_pb2, stt_pb2_grpc

from services.core.audio import AudioLimits, AudioSpec, probe
from services.core.cancellation import Cancellation
from services.core.errors import (
    Cancelled,
    InvalidArgument,
    InvalidAudio,
    NoBackend,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    Relayed,
    to_grpc_status,
)
from services.core.vad import Span
from services.jobs.buckets import BucketPolicy
from services.jobs.uri_policy import UriPolicy
from services.jobs.worker import chunks
from services.jobs.worker.calls import RouterCalls
from services.jobs.worker.fetch import Transient, read_uri
from services.jobs.worker.metrics import WorkerMetrics
from services.jobs.worker.settings import CallSettings, WorkerSettings
from services.router.jobs.intake import QuotaPolicy, check_uri
from services.router.jobs.operations import read_done_filter, read_page_token
from tests.support import encode, tone

LIMITS = AudioLimits(1 << 30, 3600)
DETAILS_KEY = "grpc-status-details-bin"
S = 16_000  # samples per second


def test_chunks_end_in_pauses_and_stay_within_the_limit():
    spans = [Span(0, 5 * S), Span(6 * S, 9 * S), Span(10 * S, 14 * S), Span(30 * S, 31 * S)]
    plan = chunks.plan(spans, 10)
    assert plan == [
        chunks.Chunk(0, 9 * S),
        chunks.Chunk(10 * S, 14 * S),
        chunks.Chunk(30 * S, 31 * S),
    ]
    assert all(c.seconds <= 10 for c in plan)
    assert chunks.loads(chunks.dumps(plan)) == plan
    assert chunks.progress(plan, set()) == 0
    assert chunks.progress(plan, {0}) == 64  # 9 s of 14 s
    assert chunks.progress(plan, {0, 1, 2}) == 100
    assert chunks.fixed(25 * S, 10) == [
        chunks.Chunk(0, 10 * S),
        chunks.Chunk(10 * S, 20 * S),
        chunks.Chunk(20 * S, 25 * S),
    ]


def test_chunk_pcm_is_linear16():
    samples = np.array([0.0, 0.5, -1.0, 2.0], dtype=np.float32)
    pcm = np.frombuffer(chunks.Chunk(0, 4).pcm(samples), dtype="<i2")
    assert pcm.tolist() == [0, 16383, -32767, 32767]


def test_shift_moves_results_and_words_onto_the_job_timeline():
    response = stt_pb2.RecognizeResponse()
    result = response.results.add()
    result.result_start_offset.FromMilliseconds(200)
    result.result_end_offset.FromMilliseconds(1500)
    word = result.alternatives.add(transcript="hi").words.add(word="hi")
    word.start_offset.FromMilliseconds(300)
    word.end_offset.FromMilliseconds(600)
    chunks.shift(response, chunks.Chunk(10 * S, 12 * S), word_offsets=True)
    assert result.result_start_offset.ToMilliseconds() == 10_200
    assert result.result_end_offset.ToMilliseconds() == 11_500
    assert (word.start_offset.ToMilliseconds(), word.end_offset.ToMilliseconds()) == (
        10_300,
        10_600,
    )
    bare = stt_pb2.RecognizeResponse()
    bare.results.add().alternatives.add().words.add(word="hi", confidence=0.5)
    chunks.shift(bare, chunks.Chunk(S, 2 * S), word_offsets=False)
    assert not bare.results[0].alternatives[0].words[0].HasField("start_offset")


def test_probe_reads_lengths_without_decoding_everything():
    pcm = (tone(2.5) * 32767).astype("<i2").tobytes()
    assert probe(pcm, AudioSpec("linear16", 16_000, 1), LIMITS) == pytest.approx(2.5)
    for container, codec in (("flac", "flac"), ("ogg", "libopus"), ("webm", "libopus")):
        seconds = probe(encode(tone(3.0), 16_000, container, codec), AudioSpec(), LIMITS)
        assert seconds == pytest.approx(3.0, abs=0.1), container


@pytest.mark.parametrize(
    ("content", "spec", "message"),
    [
        (b"", AudioSpec(), "audio is empty"),
        (b"\x01\x02" * 5000, AudioSpec(), "could not be decoded"),
        (b"\x01\x02\x03", AudioSpec("linear16", 16_000, 1), "truncated"),
        (b"\x01\x02", AudioSpec("linear16", 0, 1), "needs sample_rate_hertz"),
    ],
)
def test_probe_refuses_what_decoding_would(content, spec, message):
    with pytest.raises(InvalidAudio, match=message):
        probe(content, spec, LIMITS)


def test_probe_refuses_audio_over_the_job_limits():
    flac = encode(tone(3.0), 16_000, "flac", "flac")
    with pytest.raises(InvalidAudio, match="over this service's limit of 2 s"):
        probe(flac, AudioSpec(), AudioLimits(1 << 20, 2))
    with pytest.raises(InvalidAudio, match="bytes, over"):
        probe(flac, AudioSpec(), AudioLimits(100, 3600))
    wav = encode(tone(1.0), 16_000, "wav", "pcm_s16le")
    with pytest.raises(InvalidAudio, match="truncated"):
        probe(wav[: len(wav) // 2], AudioSpec(), LIMITS)


@contextlib.contextmanager
def answering(status: int, body: bytes = b"audio"):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/clip.flac?sig=secret"
    finally:
        server.shutdown()
        server.server_close()


def test_read_uri_by_file_and_http(tmp_path):
    policy = UriPolicy(file_roots=[tmp_path], allowed_private_hosts=["127.0.0.1"])
    (tmp_path / "a.wav").write_bytes(b"12345")
    assert read_uri((tmp_path / "a.wav").as_uri(), 10, 5, policy) == b"12345"
    with pytest.raises(InvalidAudio, match="over the job limit of 4 bytes"):
        read_uri((tmp_path / "a.wav").as_uri(), 4, 5, policy)
    with pytest.raises(InvalidAudio, match="does not exist"):
        read_uri((tmp_path / "b.wav").as_uri(), 10, 5, policy)
    with pytest.raises(InvalidAudio, match="not a file"):
        read_uri(tmp_path.as_uri(), 10, 5, policy)
    with answering(200, b"x" * 64) as url:
        assert read_uri(url, 100, 5, policy) == b"x" * 64
        with pytest.raises(InvalidAudio, match="over the job limit") as too_big:
            read_uri(url, 10, 5, policy)
        assert "secret" not in str(too_big.value)
    with answering(403) as url, pytest.raises(InvalidAudio, match="HTTP 403") as refused:
        read_uri(url, 100, 5, policy)
    assert "secret" not in str(refused.value)
    with answering(503) as url, pytest.raises(Transient, match="HTTP 503"):
        read_uri(url, 100, 5, policy)
    with answering(200) as url:
        dead = url
    with pytest.raises(Transient, match="refused"):
        read_uri(dead, 100, 5, policy)


def test_uri_forms_and_filters():
    for good in ("file:///data/a.wav", "file://localhost/a.wav", "https://bucket.example/a?sig=1"):
        check_uri(good)
    for bad in ("ftp://bucket/a.wav", "file://host/a.wav", "http:///a.wav", "a.wav", ""):
        with pytest.raises(InvalidArgument):
            check_uri(bad)
    # Objects only from the buckets listed; none listed: none read.
    allowed = BucketPolicy(["s3://bucket", "gs://audio"])
    check_uri("s3://bucket/a.wav", allowed)
    check_uri("gs://audio/calls/a.flac", allowed)
    with pytest.raises(PermissionDenied, match="reads from no bucket: list the buckets in"):
        check_uri("s3://bucket/a.wav")
    with pytest.raises(PermissionDenied, match="bucket gs://other, which this deployment"):
        check_uri("gs://other/a.wav", allowed)
    with pytest.raises(InvalidAudio, match="names no object"):
        check_uri("gs://audio/", allowed)
    assert read_done_filter("") is None and read_done_filter(" done = TRUE ") is True
    with pytest.raises(InvalidArgument):
        read_done_filter("state=RUNNING")
    with pytest.raises(InvalidArgument, match="page_token"):
        read_page_token("not a token")
    policy = QuotaPolicy(2.0, {"big": 10.0})
    assert (policy.limit_s("any"), policy.limit_s("big")) == (7200, 36000)


def test_a_spent_quota_is_resource_exhausted_with_quota_failure():
    status = to_grpc_status(QuotaExceeded("tenant 'a' spent its quota", "tenant:a"), "req-1")
    assert status.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = status_pb2.Status.FromString(dict(status.trailing_metadata)[DETAILS_KEY]).details
    failure = error_details_pb2.QuotaFailure()
    assert any(d.Unpack(failure) for d in details)
    assert failure.violations[0].subject == "tenant:a"
    assert "grpc-retry-pushback-ms" not in dict(status.trailing_metadata)


def test_worker_settings_keep_heartbeats_within_the_lease():
    with pytest.raises(ValidationError, match="a third of WORKER_LEASE_S"):
        WorkerSettings(lease_s=3, heartbeat_s=2)


class Refusing(stt_pb2_grpc.SpeechServicer):
    """Answers Recognize with the given statuses in turn, then with a result."""

    def __init__(self, refusals):
        self.refusals = list(refusals)
        self.calls = 0

    def Recognize(self, request, context):
        self.calls += 1
        if self.refusals:
            error = self.refusals.pop(0)
            if error == "slow":
                time.sleep(30)
            else:
                context.abort_with_status(to_grpc_status(error, "req"))
        return stt_pb2.RecognizeResponse(request_id="answered")


@contextlib.contextmanager
def refusing(*refusals, unavailable_limit_s: float = 5.0):
    """A worker's calls to a server that refuses as told: call(stop) is one Recognize."""
    servicer = Refusing(refusals)
    server = grpc.server(futures.ThreadPoolExecutor(4))
    stt_pb2_grpc.add_SpeechServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    settings = CallSettings(retry_max_s=0.2, unavailable_limit_s=unavailable_limit_s)
    calls = RouterCalls(f"127.0.0.1:{port}", "", settings, WorkerMetrics("worker"))
    asyncio.run_coroutine_threadsafe(calls.open(), loop).result(10)
    try:
        yield functools.partial(_call, calls), servicer
    finally:
        asyncio.run_coroutine_threadsafe(calls.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.stop(0)


def _call(calls: RouterCalls, stop: Cancellation):
    return calls.recognize(stt_pb2.RecognizeRequest(), "req", stop)


def test_a_full_service_is_waited_out_not_failed():
    full = Overloaded("every slot is taken", retry_after_s=0.05)
    with refusing(full, full, full) as (call, servicer):
        assert call(Cancellation()).request_id == "answered"
        assert servicer.calls == 4


def test_a_service_down_too_long_ends_the_attempt_and_a_refusal_fails_the_job():
    down = NoBackend("no backend")
    with (
        refusing(*[down] * 50, unavailable_limit_s=0.3) as (call, _),
        pytest.raises(NoBackend, match="UNAVAILABLE"),
    ):
        call(Cancellation())
    with refusing(InvalidAudio("audio is silent")) as (call, servicer):
        with pytest.raises(Relayed) as failed:
            call(Cancellation())
        assert failed.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert failed.value.message == "audio is silent" and servicer.calls == 1


def test_a_stop_cancels_the_call_in_flight_at_once():
    with refusing("slow") as (call, _):
        stop = Cancellation()
        threading.Timer(0.3, stop.cancel, ("the job is cancelled",)).start()
        started = time.monotonic()
        with pytest.raises(Cancelled, match="cancelled"):
            call(stop)
        assert time.monotonic() - started < 2
