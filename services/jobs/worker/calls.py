"""A worker's calls through the router (each chunk's Recognize, a job's Diarize), with the
patience a job can afford and a request can not: the core's retry mechanism with a patient
policy (`services/core/retry.py`).

RESOURCE_EXHAUSTED (every replica full) is waited out, after the retry hint the refusal gives,
for as long as it lasts: a full cluster delays jobs, it never fails them. UNAVAILABLE and
DEADLINE_EXCEEDED are retried with exponential backoff for `unavailable_limit_s`, then the
attempt ends with `NoBackend` (a later attempt at the job tries again). Any other status is
`Relayed` and fails the job with that status, as the sync call would have. The job runs on a
thread of its own; its calls run on the worker's event loop, and a cancelled job cancels the
call in flight at once.

With `WORKER_TARGET_TLS_CA_FILE` the calls go over TLS (mutual TLS with a client certificate),
on new channels when the files change; with `WORKER_API_KEY_FILE` each shows the worker's API
key.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable

import grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from services.core.cancellation import Cancellation
from services.core.client_auth import KeyFile
from services.core.errors import Cancelled
from services.core.names import REQUEST_ID_HEADER
from services.core.retry import Retrying, RetryPolicy
from services.core.tls import ClientFiles
from services.jobs.worker.metrics import WorkerMetrics
from services.jobs.worker.settings import CallSettings

log = logging.getLogger("stt.worker.calls")
# How often the job's thread looks whether its job was cancelled while a call runs.
WAIT_POLL_S = 0.1
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.enable_retries", 0),
]


class RouterCalls:
    """The calls a job makes; `open` and `close` run on the worker's event loop, the calls
    from the job's thread."""

    def __init__(
        self,
        target: str,
        diarization_target: str,
        settings: CallSettings,
        metrics,
        tls: ClientFiles | None = None,
        key: KeyFile | None = None,
    ):
        self._targets = {"speech": target, "diarization": diarization_target or target}
        self._tls = tls
        self._key = key
        self._metrics: WorkerMetrics = metrics
        self._policy = RetryPolicy(
            patient=True,
            timeouts_retried=True,
            attempt_timeout_s=settings.recognize_timeout_s,
            max_backoff_s=settings.retry_max_s,
            down_limit_s=settings.unavailable_limit_s,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._open(None if self._tls is None else self._tls.credentials())

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    def _open(self, credentials: grpc.ChannelCredentials | None) -> None:
        for name, target in self._targets.items():
            if credentials is None:
                channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
            self._channels[name] = channel

    async def _reopen(self) -> None:
        """New channels with the TLS files as they are now (the job's calls are one at a
        time, so none is in flight on the old ones); the old ones stay if the files cannot
        be read (a renewal half written)."""
        try:
            credentials = self._tls.credentials()
        except ValueError as error:
            log.error("TLS files to the router cannot be used", extra={"error": str(error)})
            return
        await self.close()
        self._open(credentials)

    def recognize(
        self, request: stt_pb2.RecognizeRequest, request_id: str, stop: Cancellation
    ) -> stt_pb2.RecognizeResponse:
        stub = stt_pb2_grpc.SpeechStub(self._channels["speech"])
        return self._call("speech", stub.Recognize, request, request_id, stop)

    def diarization_limit(self, stop: Cancellation) -> int:
        """The largest audio a Diarize through the router may carry (the router's message
        limit, as its GetServiceInfo tells); 0 when Diarize goes elsewhere, whose service
        refuses what it cannot take itself."""
        if self._targets["diarization"] != self._targets["speech"]:
            return 0
        stub = stt_pb2_grpc.SpeechStub(self._channels["speech"])
        info = self._call("speech", stub.GetServiceInfo, stt_pb2.GetServiceInfoRequest(), "", stop)
        return info.max_audio_bytes

    def diarize(
        self, request: stt_pb2.DiarizeRequest, request_id: str, stop: Cancellation
    ) -> stt_pb2.DiarizeResponse:
        stub = stt_pb2_grpc.DiarizationStub(self._channels["diarization"])
        return self._call("diarization", stub.Diarize, request, request_id, stop)

    def _call(self, to: str, rpc: Callable, request, request_id: str, stop: Cancellation):
        """`rpc(request)` until it answers, fails for good, or the job stops; blocking."""
        stop.check()
        if self._tls is not None and self._tls.changed():
            asyncio.run_coroutine_threadsafe(self._reopen(), self._loop).result()
        metadata = ((REQUEST_ID_HEADER, request_id),) if request_id else ()
        if self._key is not None:
            metadata = (*metadata, *self._key.metadata())

        async def attempt(target: str, timeout: float | None):
            return await rpc(request, timeout=timeout, metadata=metadata)

        calling = Retrying(self._policy, self._count).call(
            lambda: [self._targets[to]], attempt, None, "the job"
        )
        future = asyncio.run_coroutine_threadsafe(calling, self._loop)
        while True:
            try:
                return future.result(timeout=WAIT_POLL_S)
            except concurrent.futures.TimeoutError:
                if stop.cancelled:
                    future.cancel()
                    raise Cancelled(stop.reason) from None
            except concurrent.futures.CancelledError:
                raise Cancelled(stop.reason or "the worker is shutting down") from None

    def _count(self, target: str, code: grpc.StatusCode, tried_again: bool) -> None:
        if tried_again:
            self._metrics.chunk_retries.labels(self._metrics.service, code.name).inc()
