"""google.longrunning.Operations on the router's port: get, list (paged), cancel, delete and
wait for the jobs LongRunningRecognize accepted. The store calls block, so they run on
threads; each call is served in the router's request scope (ids, traces, errors, metrics)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import empty_pb2

from services.core.errors import InvalidArgument, NotFound, Unimplemented
from services.jobs.intake import JobIntake
from services.jobs.metrics import QueueMetrics
from services.jobs.operations import page_token, read_done_filter, read_page_token, to_operation
from services.jobs.store import QUEUED, RUNNING, Job, Store

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 500
WAIT_POLL_S = 0.25
COLLECTIONS = ("", "operations")
NO_LANGUAGE = "none"  # the metrics label of calls about operations
NO_STORE = (
    "this router keeps no jobs: set ROUTER_DATA_DIR or ROUTER_DATABASE_URL (stt up sets a "
    "data directory)"
)


class OperationsServicer(operations_pb2_grpc.OperationsServicer):
    def __init__(
        self,
        store: Store | None,
        intake: JobIntake | None,
        serving: Callable[[str, object], AbstractAsyncContextManager],
        metrics: QueueMetrics,
        service: str,
        wait_max_s: float,
    ):
        self._store = store
        self._intake = intake
        self._serving = serving
        self._metrics = metrics
        self._service = service
        self._wait_max_s = wait_max_s

    async def GetOperation(self, request, context):
        async with self._serving("GetOperation", context, NO_LANGUAGE):
            return to_operation(await self._job(request.name))

    async def ListOperations(self, request, context):
        async with self._serving("ListOperations", context, NO_LANGUAGE):
            store = self._require_store()
            if request.name not in COLLECTIONS:
                raise InvalidArgument(f"name {request.name!r} is not a collection; use operations")
            if not 0 <= request.page_size <= MAX_PAGE_SIZE:
                raise InvalidArgument(f"page_size must be 0 to {MAX_PAGE_SIZE}")
            size = request.page_size or DEFAULT_PAGE_SIZE
            done = read_done_filter(request.filter)
            after = read_page_token(request.page_token)
            tenant = self._tenant(context)
            # One more than the page holds says whether another page follows.
            jobs = await asyncio.to_thread(store.list, tenant, done, size + 1, after)
            reply = operations_pb2.ListOperationsResponse(
                operations=[to_operation(job) for job in jobs[:size]]
            )
            if len(jobs) > size:
                reply.next_page_token = page_token(jobs[size - 1])
            return reply

    async def CancelOperation(self, request, context):
        async with self._serving("CancelOperation", context, NO_LANGUAGE):
            store = self._require_store()
            job, cancelled = await asyncio.to_thread(store.cancel, request.name)
            if job is None:
                raise _not_found(request.name)
            if cancelled:
                self._metrics.finished.labels(self._service, "CANCELLED").inc()
            return empty_pb2.Empty()

    async def DeleteOperation(self, request, context):
        async with self._serving("DeleteOperation", context, NO_LANGUAGE):
            store = self._require_store()
            job = await self._job(request.name)
            if not job.done:  # deleting a job also stops it: nobody could read its result
                _, cancelled = await asyncio.to_thread(store.cancel, request.name)
                if cancelled:
                    self._metrics.finished.labels(self._service, "CANCELLED").inc()
            if not await asyncio.to_thread(store.delete, request.name):
                raise _not_found(request.name)
            return empty_pb2.Empty()

    async def WaitOperation(self, request, context):
        async with self._serving("WaitOperation", context, NO_LANGUAGE) as call:
            wait_s = self._wait_max_s
            if request.HasField("timeout"):
                wait_s = min(wait_s, request.timeout.ToTimedelta().total_seconds())
            deadline = time.monotonic() + max(0.0, min(wait_s, call.remaining() - WAIT_POLL_S))
            job = await self._job(request.name)
            while not job.done and time.monotonic() < deadline:
                await asyncio.sleep(WAIT_POLL_S)
                job = await self._job(request.name)
            return to_operation(job)

    async def accept(self, request, context, request_id: str) -> operations_pb2.Operation:
        """LongRunningRecognize, served in the router's scope: the job as an operation."""
        if self._intake is None:
            raise Unimplemented(NO_STORE)
        tenant = self._intake.tenant(tuple(context.invocation_metadata() or ()))
        job = await asyncio.to_thread(self._intake.submit, request, tenant, request_id)
        self._metrics.accepted.labels(self._service).inc()
        return to_operation(job)

    def sample_queue(self) -> None:
        """Reads the queue's size from the store for /metrics."""
        if self._store is None:
            return
        counts = self._store.counts()
        self._metrics.queued.labels(self._service).set(counts[QUEUED])
        self._metrics.running.labels(self._service).set(counts[RUNNING])

    def _tenant(self, context) -> str | None:
        """The tenant that sent the call; None when it named none (then it lists every job)."""
        if self._intake is None:
            return None
        return self._intake.named_tenant(tuple(context.invocation_metadata() or ()))

    def _require_store(self) -> Store:
        if self._store is None:
            raise Unimplemented(NO_STORE)
        return self._store

    async def _job(self, name: str) -> Job:
        job = await asyncio.to_thread(self._require_store().get, name)
        if job is None:
            raise _not_found(name)
        return job


def _not_found(name: str) -> NotFound:
    return NotFound(f"there is no operation {name!r} (unknown, deleted, or its result expired)")
