"""The job store on both of its databases, a SQLite file and a real PostgreSQL server: the same
code and the same tests. Leases, attempts, fencing of a worker that lost its job, cancels,
paging, expiry, quotas, and concurrent claimers that never take the same job."""

import threading
import time

import pytest

from services.jobs.db import open_database
from services.jobs.store import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Store,
)

TTL_S = 3600.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        database = open_database(tmp_path, "", 4)
    else:
        database = open_database(None, request.getfixturevalue("postgres_url"), 8)
    store = Store(database, TTL_S)
    yield store
    store.close()


def add(store: Store, name: str, tenant: str = "t", content: bytes | None = b"audio"):
    return store.submit(name, tenant, b"request", f"rid-{name}", "en", content, 1.5)


def test_a_job_is_claimed_renewed_chunked_and_finished(store):
    job = add(store, "a")
    assert (job.state, job.progress, job.attempts, job.audio_seconds) == (QUEUED, 0, 0, 1.5)
    claim = store.claim("w1", 30, 3).claim
    assert (claim.job.name, claim.job.state, claim.job.attempts) == ("a", RUNNING, 1)
    assert not claim.after_lease_expiry
    assert store.claim("w2", 30, 3).claim is None, "a held job was claimed twice"
    assert store.renew("a", claim.token, 30) == RUNNING
    assert store.audio("a") == b"audio"
    assert store.set_plan("a", claim.token, "[[0, 10]]", 1.4)
    assert store.save_chunk("a", claim.token, 0, b"chunk0", 50, "en")
    assert store.chunks("a") == {0: b"chunk0"}
    assert store.get("a").progress == 50
    assert store.finish("a", claim.token, b"response")
    done = store.get("a")
    assert (done.state, done.progress, done.response, done.done) == (DONE, 100, b"response", True)
    # What a job needs only while it runs goes when it ends.
    assert store.audio("a") is None and store.chunks("a") == {}
    assert store.renew("a", claim.token, 30) == DONE


def test_a_lapsed_lease_hands_the_job_over_and_fences_the_old_worker(store):
    add(store, "a")
    first = store.claim("w1", 0.2, 3).claim
    assert store.save_chunk("a", first.token, 0, b"from w1", 10, "en")
    time.sleep(0.4)
    second = store.claim("w2", 30, 3).claim
    assert second.job.name == "a" and second.after_lease_expiry and second.job.attempts == 2
    # The first worker, back from the dead, can no longer touch the job.
    assert store.renew("a", first.token, 30) == "LOST"
    assert not store.save_chunk("a", first.token, 1, b"late", 20, "en")
    assert not store.finish("a", first.token, b"stale")
    assert store.chunks("a") == {0: b"from w1"}, "the finished chunk is kept for the next worker"
    assert store.finish("a", second.token, b"fresh")
    assert store.get("a").response == b"fresh"


def test_a_job_fails_with_the_reason_after_its_last_attempt(store):
    add(store, "a")
    for _ in range(2):
        assert store.claim("w1", 0.05, 2).claim is not None
        time.sleep(0.1)
    outcome = store.claim("w2", 30, 2)
    assert outcome.claim is None and outcome.gave_up == 1
    failed = store.get("a")
    assert failed.state == FAILED and failed.error_code == 10  # ABORTED
    assert "failed 2 attempts" in failed.error_message
    assert "w1 stopped renewing its lease" in failed.error_message


def test_release_returns_a_job_to_the_queue_with_or_without_an_attempt(store):
    add(store, "a")
    claim = store.claim("w1", 30, 3).claim
    assert store.release("a", claim.token, "the worker is shutting down", count_attempt=False)
    job = store.get("a")
    assert (job.state, job.attempts) == (QUEUED, 0)
    claim = store.claim("w1", 30, 3).claim
    assert store.release("a", claim.token, "fetching failed: HTTP 503", count_attempt=True)
    assert store.get("a").attempts == 1
    assert not store.release("a", claim.token, "again", count_attempt=True), "released twice"


def test_cancel_ends_queued_and_running_jobs_but_not_finished_ones(store):
    add(store, "queued")
    add(store, "running")
    claim = store.claim("w1", 30, 3).claim
    assert claim.job.name == "queued"  # oldest first
    job, cancelled = store.cancel("running")
    assert cancelled and job.state == CANCELLED and job.error_code == 1
    assert store.renew("queued", claim.token, 30) == RUNNING
    job, cancelled = store.cancel("queued")
    assert cancelled and store.renew("queued", claim.token, 30) == CANCELLED
    assert not store.save_chunk("queued", claim.token, 0, b"late", 10, "en")
    assert store.cancel("queued") == (store.get("queued"), False)
    assert store.cancel("missing") == (None, False)


def test_delete_and_expiry(store):
    add(store, "a")
    assert store.delete("a") and store.get("a") is None and not store.delete("a")
    short = Store(store.db, result_ttl_s=0.1)
    add(short, "b")
    claim = short.claim("w1", 30, 3).claim
    short.finish("b", claim.token, b"r")
    assert short.get("b") is not None
    time.sleep(0.2)
    assert short.get("b") is None, "an expired result is gone at once"
    assert short.purge() == 1
    assert short.counts() == {QUEUED: 0, RUNNING: 0}


def test_listing_pages_newest_first_by_tenant_and_state(store):
    for index in range(5):
        add(store, f"job{index}", tenant="even" if index % 2 == 0 else "odd")
    claim = store.claim("w1", 30, 3).claim
    store.finish(claim.job.name, claim.token, b"r")
    seen, after = [], None
    while True:
        page = store.list(None, None, 2, after)
        seen += [job.name for job in page]
        if len(page) < 2:
            break
        after = (page[-1].created, page[-1].name)
    assert seen == [f"job{i}" for i in reversed(range(5))]
    assert [j.name for j in store.list("odd", None, 10, None)] == ["job3", "job1"]
    assert [j.name for j in store.list(None, True, 10, None)] == ["job0"]
    assert len(store.list(None, False, 10, None)) == 4
    assert store.counts() == {QUEUED: 4, RUNNING: 0}


def test_quota_charges_stay_within_the_limit(store):
    assert store.charge("t", "2026-01-01", 30, 100)
    assert store.charge("t", "2026-01-01", 70, 100)
    assert not store.charge("t", "2026-01-01", 1, 100), "over the limit"
    assert not store.charge("t", "2026-01-01", 0, 100), "unknown length with the quota spent"
    assert store.usage("t", "2026-01-01") == 100
    assert store.charge("t", "2026-01-02", 50, 100), "a new day starts afresh"
    assert store.charge("u", "2026-01-01", 50, 100), "each tenant has its own"
    assert not store.charge("v", "2026-01-01", 101, 100), "one job larger than the quota"
    store.record_usage("u", "2026-01-01", 60)
    assert store.usage("u", "2026-01-01") == 110


def test_concurrent_claimers_never_take_the_same_job(store):
    for index in range(12):
        add(store, f"job{index:02d}", content=None)
    taken: list[str] = []
    lock = threading.Lock()

    def claimer(worker: str) -> None:
        while (claim := store.claim(worker, 30, 3).claim) is not None:
            with lock:
                taken.append(claim.job.name)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(taken) == [f"job{index:02d}" for index in range(12)]


def test_a_database_made_before_the_api_column_gets_it(store):
    add(store, "old")
    with store.db.transaction() as tx:
        tx.run("ALTER TABLE stt_jobs DROP COLUMN api")
    reopened = Store(store.db, TTL_S)  # as a newer router starts on the same database
    assert reopened.get("old").api == "stt", "jobs stored before came through stt.v1"
    job = reopened.submit("new", "t", b"request", "rid-new", "en", None, None, "google")
    assert (job.api, reopened.get("new").api) == ("google", "google")


def test_a_data_directory_that_holds_no_database_is_an_os_error_naming_it(tmp_path):
    """The command line reports it as a start-up error, not with a traceback."""
    (tmp_path / "jobs.sqlite3").write_bytes(b"not a database at all, " * 100)
    with pytest.raises(OSError, match=r"cannot open the job store .*jobs\.sqlite3"):
        open_database(tmp_path, "", 1)
