"""Job URIs that cannot reach inside, with a router and a job worker running on 127.0.0.1 and
HTTP servers on loopback addresses only, each counting the requests it gets:
LongRunningRecognize refuses (PERMISSION_DENIED, no job made) a file outside the file roots,
a symlink out of them, a `..` out of them, and any loopback host not allowed, which gets no
request; an allowed host is read by the worker; an allowed host that redirects to a refused
one fails the job with PERMISSION_DENIED and nothing reaches the second; a file turned into a
link out of the roots after the job was accepted fails it in the worker."""

from __future__ import annotations

import grpc
import pytest

from tests.jobs_support import (
    code_of,
    jobs_router,
    running_worker,
    submit,
    wait_done,
    worker_settings,
)
from tests.test_fetch_policy import HAS_127_2, HAS_V6, site
from tests.test_router import unused_port

GARBAGE = b"RIFF nothing that decodes" * 100


@pytest.fixture
def folders(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.wav").write_bytes(GARBAGE)
    (root / "inside.wav").write_bytes(GARBAGE)
    (root / "link.wav").symlink_to(outside / "secret.wav")
    return root, outside


def policy(root, allowed_port: int) -> dict:
    return dict(
        jobs_uri_file_roots=[root], jobs_uri_allowed_private_hosts=f"127.0.0.1:{allowed_port}"
    )


def jobs_in(router) -> list[str]:
    return [job.name for job in router.server.store.list(None, None, 100, None)]


def refused(router, uri: str) -> str:
    with pytest.raises(grpc.RpcError) as denied:
        submit(router, uri=uri, language_code="en")
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED, denied.value.details()
    return denied.value.details()


def test_intake_refuses_what_the_policy_refuses_and_makes_no_job(folders, tmp_path):
    root, outside = folders
    with site() as allowed, site() as other:
        store = dict(data_dir=tmp_path / "data", **policy(root, allowed.port))
        backend = f"127.0.0.1:{unused_port()}"
        with jobs_router(backend, **store) as router:
            for uri in (
                (outside / "secret.wav").as_uri(),
                (root / "link.wav").as_uri(),  # a symlink out of the root
                f"file://{root}/../outside/secret.wav",
                "file:///etc/passwd",
            ):
                assert "JOBS_URI_FILE_ROOTS" in refused(router, uri)
            hosts = [other.url(), other.url(name="localhost"), allowed.url(name="localhost")]
            if HAS_127_2:
                hosts.append(f"http://127.0.0.2:{other.port}/a.flac")
            if HAS_V6:
                hosts.append(f"http://[::1]:{other.port}/a.flac")
            for uri in hosts:
                assert "JOBS_URI_ALLOWED_PRIVATE_HOSTS" in refused(router, uri + "?sig=secret")
            assert jobs_in(router) == [], "a refused uri made a job"
            assert other.hits == [] and allowed.hits == [], "intake sent a request"
            # What the policy allows is accepted: a file under the root, the allowed host.
            submit(router, uri=(root / "inside.wav").as_uri(), language_code="en")
            submit(router, uri=allowed.url(), language_code="en")
            assert len(jobs_in(router)) == 2
            assert allowed.hits == [], "intake checks a uri without fetching it"


def test_the_worker_holds_every_fetch_and_redirect_to_the_policy(folders, tmp_path):
    root, outside = folders
    with site() as allowed, site() as refused_site:
        uris = policy(root, allowed.port)
        data = tmp_path / "data"
        backend = f"127.0.0.1:{unused_port()}"
        with jobs_router(backend, data_dir=data, **uris) as router:
            allowed.routes["/away"] = (302, {"Location": refused_site.url("/x")})
            allowed.routes["/away-by-name"] = (
                307,
                {"Location": refused_site.url("/x", name="localhost")},
            )
            (root / "swapped.wav").write_bytes(GARBAGE)
            uris_by_job = {
                "redirect": allowed.url("/away"),
                "by-name": allowed.url("/away-by-name"),
                "swapped": (root / "swapped.wav").as_uri(),
                "inside": (root / "inside.wav").as_uri(),
                "fetched": allowed.url("/a.flac"),
            }
            names = {
                what: submit(router, uri=uri, language_code="en").name
                for what, uri in uris_by_job.items()
            }
            # Accepted, then turned into a link out of the root before a worker reads it.
            (root / "swapped.wav").unlink()
            (root / "swapped.wav").symlink_to(outside / "secret.wav")
            worker = worker_settings(router.target, data_dir=data, max_attempts=1, **uris)
            with running_worker(worker):
                ended = {what: wait_done(router, name, 60) for what, name in names.items()}
    for what in ("redirect", "by-name"):
        assert code_of(ended[what]) is grpc.StatusCode.PERMISSION_DENIED, ended[what].error
        assert "redirects to" in ended[what].error.message
    assert code_of(ended["swapped"]) is grpc.StatusCode.PERMISSION_DENIED
    assert "JOBS_URI_FILE_ROOTS" in ended["swapped"].error.message
    # Read, and found not to be audio: the policy let them through.
    for what in ("inside", "fetched"):
        assert code_of(ended[what]) is grpc.StatusCode.INVALID_ARGUMENT, ended[what].error
    assert refused_site.hits == [], "a refused redirect reached its target"
    assert sorted(path for path, _ in allowed.hits) == ["/a.flac", "/away", "/away-by-name"]
