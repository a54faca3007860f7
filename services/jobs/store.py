"""The job store: every job's state, its uploaded audio until it ends, its finished chunks,
its result until it expires, and each tenant's daily audio usage, in one database.

The same statements run on SQLite and PostgreSQL (see `db.py`). A worker claims a job with a
lease and a fresh token; every write it makes afterwards names the token, so a worker whose
lease ran out (and whose job another worker took) can no longer change the job.

A tenant's calls (get, list, cancel, delete with `tenant`) find its own jobs only: the tenant
is part of each query, so another tenant's job is not there for it, as if it did not exist.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import NamedTuple

from services.jobs.db import Database

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED"
FINISHED = (DONE, FAILED, CANCELLED)
# google.rpc.Code values for the errors the store itself sets.
CODE_CANCELLED, CODE_ABORTED = 1, 10

SCHEMA = """
CREATE TABLE IF NOT EXISTS stt_jobs (
  name TEXT PRIMARY KEY, tenant TEXT NOT NULL, state TEXT NOT NULL, request {blob} NOT NULL,
  request_id TEXT NOT NULL, language TEXT NOT NULL, created {real} NOT NULL,
  updated {real} NOT NULL, started {real}, finished {real}, expires {real},
  attempts INTEGER NOT NULL DEFAULT 0, worker TEXT NOT NULL DEFAULT '',
  token TEXT NOT NULL DEFAULT '', lease_until {real}, progress INTEGER NOT NULL DEFAULT 0,
  audio_seconds {real}, plan TEXT, response {blob}, error_code INTEGER NOT NULL DEFAULT 0,
  error_message TEXT NOT NULL DEFAULT '', api TEXT NOT NULL DEFAULT 'stt');
CREATE INDEX IF NOT EXISTS stt_jobs_by_state ON stt_jobs (state, created);
CREATE INDEX IF NOT EXISTS stt_jobs_by_expiry ON stt_jobs (expires);
CREATE INDEX IF NOT EXISTS stt_jobs_by_tenant ON stt_jobs (tenant, created);
CREATE TABLE IF NOT EXISTS stt_job_audio (name TEXT PRIMARY KEY, content {blob} NOT NULL);
CREATE TABLE IF NOT EXISTS stt_job_chunks (
  name TEXT NOT NULL, idx INTEGER NOT NULL, result {blob} NOT NULL, PRIMARY KEY (name, idx));
CREATE TABLE IF NOT EXISTS stt_tenant_usage (
  tenant TEXT NOT NULL, day TEXT NOT NULL, seconds {real} NOT NULL, PRIMARY KEY (tenant, day));
"""
# SAFE_SQL: statements here are put together from this module's own constants only (column
# lists, conditions, `_named`'s, the dialect's row lock); every value a client or a job sends
# is a bound parameter (`?`), never text in the statement.
# Columns added to stt_jobs after its first release: a database made before gets them at start.
ADDED_COLUMNS = {"api": "TEXT NOT NULL DEFAULT 'stt'"}
# Jobs whose results have not expired (the rest await `purge`).
LIVE = "(expires IS NULL OR expires > ?)"
# Schema creation by several processes at once is serialised on PostgreSQL by this lock.
SCHEMA_LOCK = 7_411_903
COLUMNS = (
    "name, tenant, state, request, request_id, language, created, updated, started, finished,"
    " attempts, worker, progress, audio_seconds, plan, response, error_code, error_message, api"
)


@dataclass(frozen=True)
class Job:
    name: str
    tenant: str
    state: str
    request: bytes  # the LongRunningRecognizeRequest, without its audio content
    request_id: str
    language: str
    created: float
    updated: float
    started: float | None
    finished: float | None
    attempts: int
    worker: str
    progress: int
    audio_seconds: float | None
    plan: str | None
    response: bytes | None
    error_code: int
    error_message: str
    api: str  # the API it came through (stt, google): the dialect its operation speaks

    @property
    def done(self) -> bool:
        return self.state in FINISHED


def usage_day(epoch_s: float) -> str:
    """The UTC day a job's audio counts against its tenant's quota."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_s))


class Claim(NamedTuple):
    job: Job
    token: str
    after_lease_expiry: bool  # the job's last worker stopped renewing its lease


class ClaimOutcome(NamedTuple):
    claim: Claim | None
    gave_up: int  # jobs failed on the way because they ran out of attempts


class Store:
    def __init__(self, database: Database, result_ttl_s: float):
        self.db = database
        self.result_ttl_s = result_ttl_s
        with self.db.transaction() as tx:
            if self.db.dialect == "postgres":
                tx.run("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            for statement in SCHEMA.format(**self.db.types).split(";"):
                if statement.strip():
                    tx.run(statement)
            present = self.db.columns(tx, "stt_jobs")
            for column, definition in ADDED_COLUMNS.items():
                if column not in present:
                    tx.run(f"ALTER TABLE stt_jobs ADD COLUMN {column} {definition}")

    def close(self) -> None:
        self.db.close()

    def submit(
        self,
        name: str,
        tenant: str,
        request: bytes,
        request_id: str,
        language: str,
        content: bytes | None,
        audio_seconds: float | None,
        api: str = "stt",
    ) -> Job:
        now = time.time()
        with self.db.transaction() as tx:
            tx.run(
                "INSERT INTO stt_jobs (name, tenant, state, request, request_id, language,"
                " created, updated, audio_seconds, api) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, tenant, QUEUED, request, request_id, language, now, now, audio_seconds, api),
            )
            if content is not None:
                tx.run("INSERT INTO stt_job_audio (name, content) VALUES (?, ?)", (name, content))
        job = self.get(name)
        if job is None:  # just written in its own transaction: only a bug gets here
            raise RuntimeError(f"job {name} vanished as it was submitted")
        return job

    def get(self, name: str, tenant: str | None = None) -> Job | None:
        """The job, or None when there is none by that name (of `tenant`, when given) or its
        result expired."""
        where, params = _named(name, tenant)
        with self.db.transaction(write=False) as tx:
            sql = (
                f"SELECT {COLUMNS} FROM stt_jobs"  # nosec B608 # SAFE_SQL
                f" WHERE {where} AND {LIVE}"
            )
            row = tx.row(sql, (*params, time.time()))
        return Job(*row) if row else None

    def list(
        self, tenant: str | None, done: bool | None, limit: int, after: tuple[float, str] | None
    ) -> list[Job]:
        """Jobs newest first (of `tenant`; None: of every tenant), `limit` of them, after the
        (created, name) of the last one seen."""
        where, params = [LIVE], [time.time()]
        if tenant is not None:
            where.append("tenant = ?")
            params.append(tenant)
        if done is not None:
            where.append("state IN (?, ?, ?)" if done else "state IN (?, ?)")
            params.extend(FINISHED if done else (QUEUED, RUNNING))
        if after is not None:
            where.append("(created < ? OR (created = ? AND name < ?))")
            params.extend((after[0], after[0], after[1]))
        sql = (
            f"SELECT {COLUMNS} FROM stt_jobs"  # nosec B608 # SAFE_SQL
            f" WHERE {' AND '.join(where)}"
            " ORDER BY created DESC, name DESC LIMIT ?"
        )
        with self.db.transaction(write=False) as tx:
            return [Job(*row) for row in tx.rows(sql, (*params, limit))]

    def cancel(self, name: str, tenant: str | None = None) -> tuple[Job | None, bool]:
        """Ends a queued or running job (of `tenant`, when given) as CANCELLED (its worker
        notices at its next heartbeat); a finished job stays as it is. The job, and whether
        this call cancelled it."""
        cancelled = (CODE_CANCELLED, "the job was cancelled")
        ended = self._end(name, None, CANCELLED, cancelled, None, tenant)
        return self.get(name, tenant), ended

    def delete(self, name: str, tenant: str | None = None) -> bool:
        where, params = _named(name, tenant)
        with self.db.transaction() as tx:
            sql = f"DELETE FROM stt_jobs WHERE {where}"  # nosec B608 # SAFE_SQL
            deleted = tx.run(sql, params)
            if deleted:
                self._drop_work(tx, name)
        return deleted > 0

    def claim(self, worker: str, lease_s: float, max_attempts: int) -> ClaimOutcome:
        """Takes the oldest queued job, or a running one whose lease ran out, for `lease_s`.

        A job that already had `max_attempts` attempts is failed with the reason instead, and
        the next one is looked at.
        """
        gave_up = 0
        while True:
            now = time.time()
            with self.db.transaction() as tx:
                row = tx.row(
                    "SELECT name, state, attempts, worker, error_message"  # nosec B608 # SAFE_SQL
                    " FROM stt_jobs WHERE state = ? OR (state = ? AND lease_until < ?)"
                    f" ORDER BY created LIMIT 1{self.db.lock_rows}",
                    (QUEUED, RUNNING, now),
                )
                if row is None:
                    return ClaimOutcome(None, gave_up)
                name, state, attempts, last_worker, last_error = row
                expired = state == RUNNING
                if expired:
                    last_error = f"its worker {last_worker} stopped renewing its lease"
                if attempts >= max_attempts:
                    message = f"the job failed {attempts} attempts; the last: {last_error}"
                    self._finish(tx, name, FAILED, (CODE_ABORTED, message), None, now)
                    gave_up += 1
                    continue
                token = uuid.uuid4().hex
                tx.run(
                    "UPDATE stt_jobs SET state = ?, worker = ?, token = ?, lease_until = ?,"
                    " attempts = attempts + 1, started = COALESCE(started, ?), updated = ?"
                    " WHERE name = ?",
                    (RUNNING, worker, token, now + lease_s, now, now, name),
                )
            job = self.get(name)
            if job is not None:
                return ClaimOutcome(Claim(job, token, expired), gave_up)

    def renew(self, name: str, token: str, lease_s: float) -> str:
        """Extends a claimed job's lease: RUNNING when it is still this claim's, else why not
        (CANCELLED, another state, "LOST" to another worker, or "GONE" when deleted)."""
        now = time.time()
        with self.db.transaction() as tx:
            renewed = tx.run(
                "UPDATE stt_jobs SET lease_until = ? WHERE name = ? AND token = ? AND state = ?",
                (now + lease_s, name, token, RUNNING),
            )
            if renewed:
                return RUNNING
            row = tx.row("SELECT state, token FROM stt_jobs WHERE name = ?", (name,))
        if row is None:
            return "GONE"
        state, holder = row
        return state if state != RUNNING or holder == token else "LOST"

    def audio(self, name: str) -> bytes | None:
        with self.db.transaction(write=False) as tx:
            row = tx.row("SELECT content FROM stt_job_audio WHERE name = ?", (name,))
        return bytes(row[0]) if row else None

    def set_plan(self, name: str, token: str, plan: str, audio_seconds: float) -> bool:
        with self.db.transaction() as tx:
            return self._update_claimed(
                tx, name, token, "plan = ?, audio_seconds = ?", (plan, audio_seconds)
            )

    def save_chunk(
        self, name: str, token: str, index: int, result: bytes, progress: int, language: str
    ) -> bool:
        """Keeps one finished chunk's result, unless the claim was lost meanwhile."""
        with self.db.transaction() as tx:
            if not self._update_claimed(
                tx, name, token, "progress = ?, language = ?", (progress, language)
            ):
                return False
            tx.run("DELETE FROM stt_job_chunks WHERE name = ? AND idx = ?", (name, index))
            tx.run(
                "INSERT INTO stt_job_chunks (name, idx, result) VALUES (?, ?, ?)",
                (name, index, result),
            )
            return True

    def chunks(self, name: str) -> dict[int, bytes]:
        with self.db.transaction(write=False) as tx:
            rows = tx.rows("SELECT idx, result FROM stt_job_chunks WHERE name = ?", (name,))
        return {index: bytes(result) for index, result in rows}

    def finish(self, name: str, token: str, response: bytes) -> bool:
        return self._end(name, token, DONE, (0, ""), response)

    def fail(self, name: str, token: str, code: int, message: str) -> bool:
        return self._end(name, token, FAILED, (code, message), None)

    def release(self, name: str, token: str, reason: str, count_attempt: bool) -> bool:
        """Puts a claimed job back in the queue; its finished chunks stay for the next worker.
        A stop for shutdown does not count as an attempt; a transient failure does."""
        returned = 0 if count_attempt else 1
        with self.db.transaction() as tx:
            return self._update_claimed(
                tx,
                name,
                token,
                "state = ?, worker = '', token = '', lease_until = NULL,"
                " attempts = attempts - ?, error_message = ?",
                (QUEUED, returned, reason),
            )

    def counts(self) -> dict[str, int]:
        with self.db.transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT state, COUNT(*) FROM stt_jobs WHERE state IN (?, ?) GROUP BY state",
                (QUEUED, RUNNING),
            )
        return {QUEUED: 0, RUNNING: 0, **{state: int(n) for state, n in rows}}

    def purge(self) -> int:
        """Deletes jobs whose results expired; how many."""
        with self.db.transaction() as tx:
            expired = tx.rows("SELECT name FROM stt_jobs WHERE expires <= ?", (time.time(),))
            names = [row[0] for row in expired]
            for name in names:
                tx.run("DELETE FROM stt_jobs WHERE name = ?", (name,))
                self._drop_work(tx, name)
        return len(names)

    def charge(self, tenant: str, day: str, seconds: float, limit: float) -> bool:
        """Adds `seconds` to the tenant's usage of `day` if that stays within `limit` (and the
        usage is below it, for audio of unknown length); False, changing nothing, if not."""
        if seconds > limit:
            return False
        with self.db.transaction() as tx:
            row = tx.row(
                "INSERT INTO stt_tenant_usage (tenant, day, seconds) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant, day) DO UPDATE"
                " SET seconds = stt_tenant_usage.seconds + excluded.seconds"
                " WHERE stt_tenant_usage.seconds < ?"
                " AND stt_tenant_usage.seconds + excluded.seconds <= ? RETURNING seconds",
                (tenant, day, seconds, limit, limit),
            )
        return row is not None

    def record_usage(self, tenant: str, day: str, seconds: float) -> None:
        """Adds audio whose length was learnt only when a worker read it (audio by uri)."""
        with self.db.transaction() as tx:
            tx.run(
                "INSERT INTO stt_tenant_usage (tenant, day, seconds) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant, day) DO UPDATE"
                " SET seconds = stt_tenant_usage.seconds + excluded.seconds",
                (tenant, day, seconds),
            )

    def usage(self, tenant: str, day: str) -> float:
        with self.db.transaction(write=False) as tx:
            row = tx.row(
                "SELECT seconds FROM stt_tenant_usage WHERE tenant = ? AND day = ?", (tenant, day)
            )
        return float(row[0]) if row else 0.0

    def _end(
        self,
        name: str,
        token: str | None,
        state: str,
        error: tuple[int, str],
        response: bytes | None,
        tenant: str | None = None,
    ) -> bool:
        """Ends the job: by its claim's holder (`token`), or from outside (None: a cancel, by
        `tenant` when given)."""
        with self.db.transaction() as tx:
            if token is None:
                where, params = _named(name, tenant)
                sql = (
                    "SELECT name FROM stt_jobs"  # nosec B608 # SAFE_SQL
                    f" WHERE {where} AND state IN (?, ?)"
                )
                row = tx.row(
                    sql,
                    (*params, QUEUED, RUNNING),
                )
            else:
                row = tx.row(
                    "SELECT name FROM stt_jobs WHERE name = ? AND token = ? AND state = ?",
                    (name, token, RUNNING),
                )
            if row is None:
                return False
            self._finish(tx, name, state, error, response, time.time())
            return True

    def _finish(self, tx, name: str, state: str, error, response, now: float) -> None:
        full = 100 if state == DONE else None
        tx.run(
            "UPDATE stt_jobs SET state = ?, error_code = ?, error_message = ?, response = ?,"
            " progress = COALESCE(?, progress), token = '', lease_until = NULL, finished = ?,"
            " updated = ?, expires = ? WHERE name = ?",
            (state, *error, response, full, now, now, now + self.result_ttl_s, name),
        )
        self._drop_work(tx, name)

    def _update_claimed(self, tx, name: str, token: str, assignments: str, values: tuple) -> bool:
        changed = tx.run(
            f"UPDATE stt_jobs SET {assignments}"  # nosec B608 # SAFE_SQL
            ", updated = ? WHERE name = ? AND token = ? AND state = ?",
            (*values, time.time(), name, token, RUNNING),
        )
        return changed > 0

    @staticmethod
    def _drop_work(tx, name: str) -> None:
        """The audio and chunk results a job needs only while it runs."""
        tx.run("DELETE FROM stt_job_audio WHERE name = ?", (name,))
        tx.run("DELETE FROM stt_job_chunks WHERE name = ?", (name,))


def _named(name: str, tenant: str | None) -> tuple[str, tuple[str, ...]]:
    """The condition that finds job `name`, among `tenant`'s jobs when a tenant is given."""
    if tenant is None:
        return "name = ?", (name,)
    return "name = ? AND tenant = ?", (name, tenant)
