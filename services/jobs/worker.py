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
from stt.v1 import stt_pb2_grpc

from services.core.errors import SttError
from services.core.logs import request_id_var
from services.core.vad import VadSettings, VoiceActivityDetector
from services.jobs.calls import CHANNEL_OPTIONS, JobFailed, PatientCaller, Stop, Stopped
from services.jobs.diarize import Diarizer
from services.jobs.fetch import Transient
from services.jobs.metrics import WorkerMetrics
from services.jobs.runner import JobRunner
from services.jobs.settings import WorkerSettings
from services.jobs.store import CANCELLED, RUNNING, Claim, Store

log = logging.getLogger("stt.worker")
SHUTDOWN = "the worker is shutting down"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(self, settings: WorkerSettings, store: Store, metrics: WorkerMetrics):
        self.name = worker_name()
        self._settings = settings
        self._store = store
        self._metrics = metrics
        self._vad = VoiceActivityDetector(VadSettings())
        self._channel = grpc.insecure_channel(settings.target, options=CHANNEL_OPTIONS)
        self._speech = stt_pb2_grpc.SpeechStub(self._channel)
        self._caller = PatientCaller(
            metrics,
            settings.recognize_timeout_s,
            settings.retry_max_s,
            settings.unavailable_limit_s,
        )
        self._diarizer = Diarizer(settings.diarization_target, self._caller)
        self._shutdown = threading.Event()
        self._current: Stop | None = None

    def load(self) -> None:
        self._vad.load()

    def run(self) -> None:
        """Claims and runs jobs until `stop`; deletes expired results now and then."""
        next_purge = 0.0
        while not self._shutdown.is_set():
            try:
                if time.monotonic() >= next_purge:
                    self._store.purge()
                    next_purge = time.monotonic() + self._settings.purge_interval_s
                if not self._claim_and_run():
                    self._shutdown.wait(self._settings.poll_s)
            except Exception:  # the database went away: keep trying, the jobs are safe in it
                log.exception("job store error; retrying", extra={"worker": self.name})
                self._shutdown.wait(self._settings.poll_s)
        self._channel.close()
        self._diarizer.close()

    def stop(self) -> None:
        """Stops claiming, and hands the job in hand back to the queue."""
        self._shutdown.set()
        if self._current is not None:
            self._current.set(SHUTDOWN)

    def _claim_and_run(self) -> bool:
        settings = self._settings
        outcome = self._store.claim(self.name, settings.lease_s, settings.max_attempts)
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
        stop = Stop()
        self._current = stop
        if self._shutdown.is_set():
            stop.set(SHUTDOWN)
        job = claim.job
        log.info("job claimed", extra={"job": job.name, "attempt": job.attempts})
        heartbeat = Heartbeat(self._store, claim, self._settings, self._metrics, stop)
        heartbeat.start()
        self._metrics.busy.labels(self._metrics.service).set(1)
        runner = JobRunner(
            self._store,
            claim,
            self._settings,
            self._vad,
            self._speech,
            self._diarizer,
            self._caller,
            stop,
        )
        try:
            self._end(claim, runner, stop)
        finally:
            heartbeat.finish()
            self._metrics.busy.labels(self._metrics.service).set(0)
            self._current = None

    def _end(self, claim: Claim, runner: JobRunner, stop: Stop) -> None:
        name, token = claim.job.name, claim.token
        try:
            response = runner.run()
        except Stopped:
            if stop.reason == SHUTDOWN:
                self._store.release(name, token, SHUTDOWN, count_attempt=False)
            log.info("job stopped", extra={"job": name, "why": stop.reason or "lost"})
            return
        except (SttError, JobFailed) as error:  # the audio's or a service's answer
            self._failed(claim, error.code, error.message)
            return
        except Transient as error:
            self._store.release(name, token, str(error), count_attempt=True)
            log.warning(
                "job attempt failed; back in the queue", extra={"job": name, "why": str(error)}
            )
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
        settings: WorkerSettings,
        metrics: WorkerMetrics,
        stop: Stop,
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
            self._halt.set(f"the job is {state.lower()}")
            return

    def finish(self) -> None:
        self._done.set()
        self.join()

    def _count(self, outcome: str) -> None:
        self._metrics.heartbeats.labels(self._metrics.service, outcome).inc()
