"""A job worker: claims one job at a time from the store, keeps its lease alive while it runs
it, and records how it ended.

A job ends DONE with its response, FAILED with the status its audio or a service gave, or goes
back to the queue: after a transient failure (counted as an attempt), or when the worker is
told to stop (not counted; its finished chunks stay for the next worker). A cancel or a lost
lease, seen at the next heartbeat, stops the work in hand within a heartbeat.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import grpc

from services.core.cancellation import Cancellation
from services.core.errors import Cancelled, NoBackend, SttError
from services.core.logs import request_id_var
from services.core.vad import VadSettings, VoiceActivityDetector
from services.jobs.store import CANCELLED, RUNNING, Claim, Store
from services.jobs.uri_policy import UriPolicy
from services.jobs.worker.calls import RouterCalls
from services.jobs.worker.fetch import Transient
from services.jobs.worker.metrics import WorkerMetrics
from services.jobs.worker.object_store import ObjectStore
from services.jobs.worker.runner import JobRunner
from services.jobs.worker.settings import LeaseSettings, WorkerSettings

log = logging.getLogger("stt.worker")
SHUTDOWN = "the worker is shutting down"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self, settings: WorkerSettings, store: Store, calls: RouterCalls, metrics: WorkerMetrics
    ):
        self.name = worker_name()
        self._settings = settings
        self._store = store
        self._calls = calls
        self._metrics = metrics
        self._uris = UriPolicy.from_settings(settings.job_uris)
        self._vad = VoiceActivityDetector(VadSettings())
        self._objects = ObjectStore(settings.buckets.policy())  # its clients made once
        self._shutdown = threading.Event()
        self._current: Cancellation | None = None

    def load(self) -> None:
        self._vad.load()

    def run(self) -> None:
        """Claims and runs jobs until `stop`; deletes expired results now and then."""
        leases = self._settings.leases
        next_purge = 0.0
        while not self._shutdown.is_set():
            try:
                if time.monotonic() >= next_purge:
                    self._store.purge()
                    next_purge = time.monotonic() + leases.purge_interval_s
                if not self._claim_and_run():
                    self._shutdown.wait(leases.poll_s)
            except Exception:  # the database went away: keep trying, the jobs are safe in it
                log.exception("job store error; retrying", extra={"worker": self.name})
                self._shutdown.wait(leases.poll_s)

    def stop(self) -> None:
        """Stops claiming, and hands the job in hand back to the queue."""
        self._shutdown.set()
        if self._current is not None:
            self._current.cancel(SHUTDOWN)

    def _claim_and_run(self) -> bool:
        leases = self._settings.leases
        outcome = self._store.claim(self.name, leases.lease_s, leases.max_attempts)
        if outcome.gave_up:
            self._metrics.finished.labels(self._metrics.service, "ABORTED").inc(outcome.gave_up)
        if outcome.claim is None:
            return False
        if outcome.claim.after_lease_expiry:
            self._metrics.lease_expiries.labels(self._metrics.service).inc()
        token = request_id_var.set(outcome.claim.job.request_id)
        try:
            self._work(outcome.claim)
        finally:
            request_id_var.reset(token)
        return True

    def _work(self, claim: Claim) -> None:
        stop = Cancellation()
        self._current = stop
        if self._shutdown.is_set():
            stop.cancel(SHUTDOWN)
        job = claim.job
        log.info("job claimed", extra={"job": job.name, "attempt": job.attempts})
        heartbeat = Heartbeat(self._store, claim, self._settings.leases, self._metrics, stop)
        heartbeat.start()
        self._metrics.busy.labels(self._metrics.service).set(1)
        runner = JobRunner(
            self._store,
            claim,
            self._settings,
            self._uris,
            self._vad,
            self._calls,
            stop,
            self._objects,
        )
        try:
            self._end(claim, runner, stop)
        finally:
            heartbeat.finish()
            self._metrics.busy.labels(self._metrics.service).set(0)
            self._current = None

    def _end(self, claim: Claim, runner: JobRunner, stop: Cancellation) -> None:
        name, token = claim.job.name, claim.token
        try:
            response = runner.run()
        except Cancelled as stopped:  # from outside: nothing more may be written for it
            if stop.reason == SHUTDOWN:
                self._store.release(name, token, SHUTDOWN, count_attempt=False)
            log.info("job stopped", extra={"job": name, "why": stop.reason or stopped.message})
            return
        except (Transient, NoBackend) as error:
            self._store.release(name, token, str(error), count_attempt=True)
            log.warning(
                "job attempt failed; back in the queue", extra={"job": name, "why": str(error)}
            )
            return
        except SttError as error:  # the audio's or a service's answer
            self._failed(claim, error.code, error.message)
            return
        except Exception as error:
            log.exception("job attempt failed unexpectedly", extra={"job": name})
            reason = f"internal error in worker {self.name}: {type(error).__name__}"
            self._store.release(name, token, reason, count_attempt=True)
            return
        if self._store.finish(name, token, response.SerializeToString()):
            language = response.language_code or "unknown"
            self._metrics.audio_seconds.labels(self._metrics.service, language).inc(
                runner.audio_seconds
            )
            self._count_end(claim, grpc.StatusCode.OK)
            log.info("job done", extra={"job": name, "audio_s": round(runner.audio_seconds, 1)})

    def _failed(self, claim: Claim, code: grpc.StatusCode, message: str) -> None:
        if self._store.fail(claim.job.name, claim.token, code.value[0], message):
            self._count_end(claim, code)
            log.info(
                "job failed", extra={"job": claim.job.name, "code": code.name, "reason": message}
            )

    def _count_end(self, claim: Claim, code: grpc.StatusCode) -> None:
        service = self._metrics.service
        self._metrics.finished.labels(service, code.name).inc()
        took = time.time() - claim.job.created
        self._metrics.latency.labels(service, code.name).observe(took)


class Heartbeat(threading.Thread):
    """Renews the lease every `heartbeat_s`; stops the job when it was cancelled, deleted, or
    taken over by another worker."""

    def __init__(
        self,
        store: Store,
        claim: Claim,
        settings: LeaseSettings,
        metrics: WorkerMetrics,
        stop: Cancellation,
    ):
        super().__init__(name=f"heartbeat-{claim.job.name}", daemon=True)
        self._store = store
        self._claim = claim
        self._settings = settings
        self._metrics = metrics
        self._halt = stop
        self._done = threading.Event()

    def run(self) -> None:
        name, token = self._claim.job.name, self._claim.token
        while not self._done.wait(self._settings.heartbeat_s):
            try:
                state = self._store.renew(name, token, self._settings.lease_s)
            except Exception:  # the lease may still hold until the store answers again
                log.warning("lease renewal failed", exc_info=True, extra={"job": name})
                self._count("error")
                continue
            if state == RUNNING:
                self._count("renewed")
                continue
            self._count("cancelled" if state == CANCELLED else "lost")
            self._halt.cancel(f"the job is {state.lower()}")
            return

    def finish(self) -> None:
        self._done.set()
        self.join()

    def _count(self, outcome: str) -> None:
        self._metrics.heartbeats.labels(self._metrics.service, outcome).inc()
