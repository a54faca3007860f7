"""Job audio from object stores (`services.jobs.worker.object_store`), against storage emulators on
loopback: gcp-storage-emulator for gs://, moto's server for s3://, and a canned HTTP server for
the failures neither emulator makes (403, 503, a server that never answers)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time

import boto3
import pytest
from gcp_storage_emulator.server import create_server
from google.cloud import storage
from moto.server import ThreadedMotoServer

from services.core.errors import FailedPrecondition, InvalidAudio, PermissionDenied
from services.jobs.buckets import bucket_allowlist, is_object_uri, parse
from services.jobs.worker.fetch import Transient
from services.jobs.worker.object_store import ObjectStore
from tests.support import encode, tone

AUDIO = encode(tone(1.0), 16_000, "wav", "pcm_s16le")
BIG = 3 << 20  # over one read block, so reads take several


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def no_cloud_metadata(monkeypatch):
    """Credential lookups that would ask a cloud's metadata server ask a closed loopback
    port instead, and AWS's instance metadata is off."""
    closed = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("GCE_METADATA_HOST", closed)
    monkeypatch.setenv("GCE_METADATA_IP", closed)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def gcs_host():
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    host = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STORAGE_EMULATOR_HOST", host)
        bucket = storage.Client().create_bucket("audio")
        bucket.blob("calls/one.wav").upload_from_string(AUDIO)
        bucket.blob("big.bin").upload_from_string(b"\1" * BIG)
    yield host
    server.stop()


@pytest.fixture
def gcs(gcs_host, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_host)
    return ObjectStore()


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket="audio")
    client.put_object(Bucket="audio", Key="calls/one.wav", Body=AUDIO)
    client.put_object(Bucket="audio", Key="big.bin", Body=b"\1" * BIG)
    yield endpoint
    server.stop()


def aws_env(monkeypatch, endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    aws_env(monkeypatch, s3_endpoint)
    return ObjectStore()


@contextlib.contextmanager
def canned(status: int = 0):
    """A loopback HTTP server answering every request with `status`, or never (status 0)."""
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            if not status:
                release.wait(10)
                return
            body = b'{"error": {"code": %d, "message": "canned"}}' % status
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("store", ["gcs", "s3"])
def test_an_object_is_read_whole(store, request):
    scheme = "gs" if store == "gcs" else "s3"
    reader = request.getfixturevalue(store)
    assert reader.read(f"{scheme}://audio/calls/one.wav", 10_000_000, 10) == AUDIO
    assert reader.read(f"{scheme}://audio/big.bin", 10_000_000, 10) == b"\1" * BIG


@pytest.mark.parametrize("store", ["gcs", "s3"])
def test_an_object_over_the_size_bound_is_refused(store, request):
    scheme = "gs" if store == "gcs" else "s3"
    reader = request.getfixturevalue(store)
    with pytest.raises(InvalidAudio, match=rf"{scheme}://audio/big.bin is {BIG} bytes, over the"):
        reader.read(f"{scheme}://audio/big.bin", BIG - 1, 10)


@pytest.mark.parametrize("store", ["gcs", "s3"])
def test_a_missing_object_and_a_missing_bucket_are_told_apart(store, request):
    scheme = "gs" if store == "gcs" else "s3"
    reader = request.getfixturevalue(store)
    with pytest.raises(InvalidAudio, match=rf"names no object in bucket {scheme}://audio$"):
        reader.read(f"{scheme}://audio/calls/none.wav", 10_000_000, 10)
    with pytest.raises(InvalidAudio, match=rf"in bucket {scheme}://nobucket, which does not exist"):
        reader.read(f"{scheme}://nobucket/calls/one.wav", 10_000_000, 10)


def test_the_bucket_policy_is_asked_before_anything_is_sent(gcs):
    policy = bucket_allowlist(["gs://audio", "s3://other/"])
    allowed = ObjectStore(policy)
    assert allowed.read("gs://audio/calls/one.wav", 10_000_000, 10) == AUDIO
    # Nothing listens for s3 here: the refusal comes before any request.
    with pytest.raises(PermissionDenied, match="bucket s3://audio, which this deployment"):
        allowed.read("s3://audio/calls/one.wav", 10_000_000, 10)
    with pytest.raises(PermissionDenied, match="gs://elsewhere"):
        allowed.read("gs://elsewhere/x.wav", 10_000_000, 10)


def test_allowlist_entries_must_name_a_bucket():
    for entry in ("audio", "gs://", "gs://a/b", "ftp://audio"):
        with pytest.raises(ValueError, match="is not gs://BUCKET or s3://BUCKET"):
            bucket_allowlist([entry])


def test_uris_are_parsed_as_written():
    ref = parse("gs://audio/calls/2026 01/one%20two.wav")
    assert (ref.scheme, ref.bucket, ref.key) == ("gs", "audio", "calls/2026 01/one%20two.wav")
    assert str(parse("S3://b/k")) == "s3://b/k"
    assert is_object_uri("gs://b/k") and is_object_uri("s3://b/k")
    assert not is_object_uri("https://b/k") and not is_object_uri("file:///gs://x")
    for uri, why in [
        ("gs://", "names no bucket"),
        ("gs:///k", "names no bucket"),
        ("s3://bucket", "names no object"),
        ("s3://bucket/", "names no object"),
        ("ftp://b/k", "not a gs:// or s3:// URI"),
    ]:
        with pytest.raises(InvalidAudio, match=why):
            parse(uri)


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_a_store_that_cannot_be_reached_is_transient(scheme, monkeypatch):
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", closed)
    aws_env(monkeypatch, closed)
    with pytest.raises(Transient, match=rf"reading {scheme}://audio/one.wav failed"):
        ObjectStore().read(f"{scheme}://audio/one.wav", 10_000_000, 3)


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_a_store_that_never_answers_is_transient_within_the_time_bound(scheme, monkeypatch):
    with canned(0) as silent:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", silent)
        aws_env(monkeypatch, silent)
        started = time.monotonic()
        with pytest.raises(Transient, match=rf"{scheme}://audio/one.wav"):
            ObjectStore().read(f"{scheme}://audio/one.wav", 10_000_000, 1)
        assert time.monotonic() - started < 8


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_a_servers_5xx_is_transient_and_403_is_permission_denied(scheme, monkeypatch):
    for status, error in [(503, Transient), (403, PermissionDenied)]:
        with canned(status) as server:
            monkeypatch.setenv("STORAGE_EMULATOR_HOST", server)
            aws_env(monkeypatch, server)
            with pytest.raises(error, match=rf"{scheme}://audio/one.wav"):
                ObjectStore().read(f"{scheme}://audio/one.wav", 10_000_000, 2)


def test_no_aws_credentials_is_a_failed_precondition(monkeypatch, s3_endpoint, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(FailedPrecondition, match="needs AWS credentials on the worker"):
        ObjectStore().read("s3://audio/calls/one.wav", 10_000_000, 5)


def test_no_google_credentials_is_a_failed_precondition(monkeypatch, tmp_path):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-key.json"))
    with pytest.raises(FailedPrecondition, match="needs Google Cloud credentials on the worker"):
        ObjectStore().read("gs://audio/calls/one.wav", 10_000_000, 5)
