"""A worker's calls to the services (each chunk's Recognize through the router, Diarize),
with the patience a job can afford and a request can not.

RESOURCE_EXHAUSTED (every replica full) is waited out, after the retry hint the refusal
gives, for as long as it lasts: a full cluster delays jobs, it never fails them. UNAVAILABLE
and DEADLINE_EXCEEDED are retried with exponential backoff for `unavailable_limit_s`, then
the attempt ends as `Transient` (a later attempt at the job tries again). Any other status
fails the job with that status, as the sync call would have. A stop (cancel, lost lease,
shutdown) cancels the call in flight at once.
"""

from __future__ import annotations

import random
import threading
import time

import grpc

from services.jobs.fetch import Transient
from services.jobs.metrics import WorkerMetrics
from services.router.failover import retry_after_s

FIRST_BACKOFF_S = 0.5
WAIT_POLL_S = 0.1
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.enable_retries", 0),
]
PATIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class Stop:
    """Why the job in hand must stop now: cancelled, lost to another worker, or shutdown."""

    def __init__(self):
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

    def check(self) -> None:
        if self._event.is_set():
            raise Stopped(self.reason)


class Stopped(Exception):
    """The job stopped from outside; nothing more may be written for it."""


class JobFailed(Exception):
    """The job ends with this status, as the sync call would have answered."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class PatientCaller:
    def __init__(
        self,
        metrics: WorkerMetrics,
        timeout_s: float,
        retry_max_s: float,
        unavailable_limit_s: float,
    ):
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._retry_max_s = retry_max_s
        self._unavailable_limit_s = unavailable_limit_s

    def call(self, rpc, request, request_id: str, stop: Stop):
        """`rpc(request)` on a unary multi-callable, until it answers, fails for good, or stops."""
        backoff, down_since = FIRST_BACKOFF_S, None
        while True:
            stop.check()
            future = rpc.future(
                request, timeout=self._timeout_s, metadata=(("x-request-id", request_id),)
            )
            try:
                return _result(future, stop)
            except grpc.RpcError as error:
                code = error.code()
                if code is grpc.StatusCode.CANCELLED and stop.is_set():
                    raise Stopped(stop.reason) from None
                if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                    delay = retry_after_s(error) or backoff
                elif code in PATIENT:
                    down_since = down_since or time.monotonic()
                    if time.monotonic() - down_since > self._unavailable_limit_s:
                        raise Transient(
                            f"{code.name} for {self._unavailable_limit_s:g} s: {error.details()}"
                        ) from None
                    delay = backoff
                else:
                    raise JobFailed(code, error.details() or "") from None
            self._metrics.chunk_retries.labels(self._metrics.service, code.name).inc()
            backoff = min(backoff * 2, self._retry_max_s)
            # Jitter, so that workers refused together do not come back together.
            if stop.wait(min(delay, self._retry_max_s) * random.uniform(0.8, 1.2)):
                raise Stopped(stop.reason)


def _result(future, stop: Stop):
    while True:
        try:
            return future.result(timeout=WAIT_POLL_S)
        except grpc.FutureTimeoutError:
            if stop.is_set():
                future.cancel()
                raise Stopped(stop.reason) from None
