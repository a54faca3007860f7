"""Long-running jobs end to end: LongRunningRecognize on the router, a worker transcribing
through the router into whisper_en, and the Operations service, with a SQLite store.

A two-minute clip (thirteen real recordings in a row) gives the words Recognize gives, with
progress rising on the way; short jobs check listing, waiting, deleting, audio by file:// and
http:// uri, bad audio, cancelling mid-job and the tenant quota.
"""

import contextlib
import functools
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from google.longrunning import operations_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.jobs_support import (
    code_of,
    get,
    job_transcript,
    jobs_router,
    metadata_of,
    response_of,
    running_worker,
    submit,
    wait_done,
    worker_settings,
)
from tests.support import clip, http_get, metric, request, transcript, wer

LONG = "en/long_concat_en.flac"
JFK = "en/jfk.flac"
QUILTER = "en/mr_quilter_picovoice_leopard.wav"


@pytest.fixture(scope="module")
def stack(whisper_server, audio_dir, tmp_path_factory):
    """A router with a SQLite job store in front of whisper_en, and one worker; jobs may name
    the shared clips and the tests' folders by file://, and HTTP servers on 127.0.0.1."""
    data = tmp_path_factory.mktemp("jobs")
    uris = dict(
        jobs_uri_file_roots=[audio_dir, tmp_path_factory.getbasetemp()],
        jobs_uri_allowed_private_hosts="127.0.0.1",
    )
    with (
        jobs_router(whisper_server.target, data_dir=data, **uris) as router,
        running_worker(worker_settings(router.target, data_dir=data, **uris)) as worker,
    ):
        router.worker = worker
        yield router


@pytest.fixture(scope="module")
def long_job(stack):
    """The two-minute clip as a job, with every progress value seen while it ran."""
    operation = submit(stack, clip(LONG), language_code="en", enable_word_time_offsets=True)
    seen = [metadata_of(operation).progress_percent]
    deadline = time.monotonic() + 280
    while not operation.done and time.monotonic() < deadline:
        time.sleep(0.2)
        operation = get(stack, operation.name)
        seen.append(metadata_of(operation).progress_percent)
    assert operation.done, "the two-minute job did not finish in time"
    return operation, seen


def test_a_two_minute_job_gives_the_words_recognize_gives(stack, long_job):
    operation, _ = long_job
    reference = stack.stub.Recognize(request(clip(LONG), language_code="en"), timeout=280)
    assert wer(transcript(reference), job_transcript(operation)) <= 0.05
    response = response_of(operation)
    assert response.service == "whisper_en" and response.language_code == "en"
    assert abs(response.audio_duration.ToTimedelta().total_seconds() - 126.98) < 0.1
    starts = [r.result_start_offset.ToTimedelta().total_seconds() for r in response.results]
    assert starts == sorted(starts), "results are in time order on the job's timeline"
    assert 110 < response.results[-1].result_end_offset.ToTimedelta().total_seconds() < 127.5
    # Word offsets are on the job's timeline too: "today only platforms" is said at 41-46 s.
    words = [w for r in response.results for w in r.alternatives[0].words]
    today = next(w for w in words if w.word.strip(",.").lower() == "today")
    assert 40.5 < today.start_offset.ToTimedelta().total_seconds() < 42.5


def test_progress_rises_while_the_job_runs(long_job):
    operation, seen = long_job
    assert seen == sorted(seen), f"progress went down: {seen}"
    assert any(0 < p < 100 for p in seen), f"no progress seen between start and end: {seen}"
    assert seen[-1] == 100
    meta = metadata_of(operation)
    assert meta.language_code == "en"
    assert meta.last_update_time.ToNanoseconds() > meta.start_time.ToNanoseconds()


def test_job_metrics(stack, long_job):
    assert metric(stack, "stt_jobs_accepted_total") >= 1
    assert metric(stack.worker, "stt_jobs_finished_total", code="OK") >= 1
    assert metric(stack.worker, "stt_job_audio_seconds_total", language="en") >= 126
    assert metric(stack.worker, "stt_job_duration_seconds_count", code="OK") >= 1
    assert metric(stack.worker, "stt_worker_heartbeats_total", outcome="renewed") >= 1
    assert metric(stack, "stt_router_requests_total", method="LongRunningRecognize") >= 1
    assert http_get(stack.worker, "/readyz")[0] == 200


@contextlib.contextmanager
def http_server(folder):
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        """No access log in the test output."""


def test_list_get_wait_and_delete(stack, audio_dir, tmp_path):
    (tmp_path / "quilter.wav").write_bytes(clip(QUILTER))
    tenant = (("x-tenant-id", f"list-{time.monotonic_ns()}"),)
    with http_server(tmp_path) as base:
        names = [
            submit(stack, clip(JFK), metadata=tenant, language_code="en").name,
            submit(stack, uri=(audio_dir / QUILTER).as_uri(), metadata=tenant).name,
            submit(stack, uri=f"{base}/quilter.wav?X-Signature=abc", metadata=tenant).name,
        ]
        waited = [
            stack.operations.WaitOperation(
                operations_pb2.WaitOperationRequest(name=name, timeout={"seconds": 120}),
                metadata=tenant,
                timeout=150,
            )
            for name in names
        ]
    assert all(op.done for op in waited)
    assert "ask not what your country" in job_transcript(waited[0]).lower()
    for operation in waited[1:]:
        assert "apostle of the middle classes" in job_transcript(operation).lower()
        assert response_of(operation).language_code == "en"  # detected
    assert metadata_of(waited[1]).uri == (audio_dir / QUILTER).as_uri()
    assert get(stack, names[0], tenant) == waited[0]

    listed, token = [], ""
    while True:
        page = stack.operations.ListOperations(
            operations_pb2.ListOperationsRequest(name="operations", page_size=2, page_token=token),
            metadata=tenant,
            timeout=10,
        )
        listed += [op.name for op in page.operations]
        token = page.next_page_token
        if not token:
            break
    assert listed == names[::-1], "the tenant's jobs, newest first, each once"
    running = stack.operations.ListOperations(
        operations_pb2.ListOperationsRequest(filter="done=false"), metadata=tenant, timeout=10
    )
    assert not running.operations

    stack.operations.DeleteOperation(
        operations_pb2.DeleteOperationRequest(name=names[0]), metadata=tenant
    )
    for call, message in (
        (stack.operations.GetOperation, operations_pb2.GetOperationRequest(name=names[0])),
        (stack.operations.DeleteOperation, operations_pb2.DeleteOperationRequest(name=names[0])),
        (stack.operations.CancelOperation, operations_pb2.CancelOperationRequest(name="nope")),
        (stack.operations.WaitOperation, operations_pb2.WaitOperationRequest(name="nope")),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            call(message, metadata=tenant, timeout=10)
        assert refused.value.code() is grpc.StatusCode.NOT_FOUND


def test_wait_returns_the_operation_unfinished_when_its_timeout_passes(stack):
    operation = submit(stack, clip(LONG), language_code="en")
    started = time.monotonic()
    waited = stack.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=operation.name, timeout={"nanos": 500_000_000}),
        timeout=30,
    )
    assert not waited.done and time.monotonic() - started < 5
    stack.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=operation.name))


def test_cancel_mid_job_ends_it_cancelled_and_frees_the_worker(stack):
    operation = submit(stack, clip(LONG), language_code="en")
    deadline = time.monotonic() + 120
    while metadata_of(get(stack, operation.name)).progress_percent == 0:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    stack.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=operation.name))
    cancelled = get(stack, operation.name)
    assert cancelled.done and code_of(cancelled) is grpc.StatusCode.CANCELLED
    assert 0 < metadata_of(cancelled).progress_percent < 100
    # The worker lets go within seconds, and the next job runs.
    deadline = time.monotonic() + 10
    while metric(stack.worker, "stt_worker_busy") != 0:
        assert time.monotonic() < deadline, "the worker kept running a cancelled job"
        time.sleep(0.1)
    assert metric(stack.worker, "stt_worker_heartbeats_total", outcome="cancelled") >= 1
    assert get(stack, operation.name) == cancelled, "nothing was written after the cancel"
    after = wait_done(stack, submit(stack, clip(JFK), language_code="en").name, 120)
    assert "ask not" in job_transcript(after).lower()


def test_bad_audio_fails_the_call_or_the_job_with_invalid_argument(stack, tmp_path):
    for content, expected in (
        (b"\x00\x01 not audio at all " * 64, "could not be decoded"),
        (b"", "audio is empty"),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            submit(stack, content, language_code="en")
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert expected in refused.value.details()
    for uri, expected in (
        ("ftp://example.invalid/a.wav", "file:// path or an http(s):// URL"),
        ("file://remote-host/a.wav", "file:///absolute/path"),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            submit(stack, uri=uri, language_code="en")
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert expected in refused.value.details()
    with pytest.raises(grpc.RpcError) as refused:
        submit(stack, clip(JFK), language_code="fr")
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    (tmp_path / "garbage.wav").write_bytes(b"RIFF nothing that decodes" * 100)
    with http_server(tmp_path) as base:
        names = [
            submit(stack, uri=(tmp_path / "missing.wav").as_uri(), language_code="en").name,
            submit(stack, uri=(tmp_path / "garbage.wav").as_uri(), language_code="en").name,
            submit(stack, uri=f"{base}/missing.wav?sig=secret", language_code="en").name,
        ]
        failed = [wait_done(stack, name, 60) for name in names]
    assert [code_of(op) for op in failed] == [grpc.StatusCode.INVALID_ARGUMENT] * 3
    assert "does not exist" in failed[0].error.message
    assert "HTTP 404" in failed[2].error.message and "secret" not in failed[2].error.message


def test_the_daily_quota_refuses_with_quota_failure(whisper_server, audio_dir, tmp_path):
    # 20 s a day for everyone: one 11 s clip fits, a second does not; "big" may have an hour.
    quota = dict(job_quota_hours=20 / 3600, job_quota_overrides="big=1")
    with jobs_router(whisper_server.target, data_dir=tmp_path, **quota) as router:
        small = (("x-tenant-id", "small"),)
        submit(router, clip(JFK), metadata=small, language_code="en")
        with pytest.raises(grpc.RpcError) as refused:
            submit(router, clip(JFK), metadata=small, language_code="en")
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "tenant 'small' has used 0.00 h" in refused.value.details()
        details = rpc_status.from_call(refused.value).details
        failure = error_details_pb2.QuotaFailure()
        assert any(d.Unpack(failure) for d in details)
        assert failure.violations[0].subject == "tenant:small"
        for tenant in ("big", "big", "other"):
            submit(router, clip(JFK), metadata=(("x-tenant-id", tenant),), language_code="en")
        rejected = metric(router, "stt_router_rejections_total", reason="quota_exceeded")
        assert rejected == 1


def test_a_router_without_a_store_answers_unimplemented(whisper_server, audio_dir):
    with jobs_router(whisper_server.target) as router:
        with pytest.raises(grpc.RpcError) as refused:
            submit(router, clip(JFK), language_code="en")
        assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED
        assert "ROUTER_DATA_DIR" in refused.value.details()
