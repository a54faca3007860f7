"""google.longrunning.Operations on the router's port: get, list (paged), cancel, delete and
wait for the jobs LongRunningRecognize accepted, through stt.v1 or a drop-in API (each job's
operation is packed in the dialect of the API it came through; see `operations.py`). Each call
goes through the router's request path (ids, traces, readiness, errors, metrics) like any
other; the store calls block, so they run on threads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import empty_pb2
from stt.v1 import stt_pb2

from services.core.errors import InvalidArgument, NotFound, Unimplemented
from services.jobs.intake import JobIntake
from services.jobs.operations import (
    STT_API,
    STT_ONLY,
    Dialect,
    page_token,
    read_done_filter,
    read_page_token,
    to_operation,
)
from services.jobs.store import QUEUED, RUNNING, Job, Store
from services.router import grpc_front
from services.router.failover import Call
from services.router.metrics import RouterMetrics
from services.router.path import Incoming, RequestPath

OPERATIONS = "google.longrunning.Operations"
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
        path: RequestPath,
        store: Store | None,
        intake: JobIntake | None,
        metrics: RouterMetrics,
        dialects: Mapping[str, Dialect] = STT_ONLY,
    ):
        self._path = path
        self._store = store
        self._intake = intake
        self._dialects = dialects
        self._metrics = metrics.jobs
        self._service = metrics.service
        self._wait_max_s = path.settings.wait_max_s

    async def GetOperation(self, request, context):
        async def get(call: Call, incoming: Incoming):
            return self._operation(await self._job(request.name))

        return await self._serve("GetOperation", context, get)

    async def ListOperations(self, request, context):
        async def page(call: Call, incoming: Incoming):
            store = self._require_store()
            if request.name not in COLLECTIONS:
                raise InvalidArgument(f"name {request.name!r} is not a collection; use operations")
            if not 0 <= request.page_size <= MAX_PAGE_SIZE:
                raise InvalidArgument(f"page_size must be 0 to {MAX_PAGE_SIZE}")
            size = request.page_size or DEFAULT_PAGE_SIZE
            done = read_done_filter(request.filter)
            after = read_page_token(request.page_token)
            tenant = self._tenant(incoming)
            # One more than the page holds says whether another page follows.
            jobs = await asyncio.to_thread(store.list, tenant, done, size + 1, after)
            reply = operations_pb2.ListOperationsResponse(
                operations=[self._operation(job) for job in jobs[:size]]
            )
            if len(jobs) > size:
                reply.next_page_token = page_token(jobs[size - 1])
            return reply

        return await self._serve("ListOperations", context, page)

    async def CancelOperation(self, request, context):
        async def cancel(call: Call, incoming: Incoming):
            job, cancelled = await asyncio.to_thread(self._require_store().cancel, request.name)
            if job is None:
                raise _not_found(request.name)
            if cancelled:
                self._metrics.finished.labels(self._service, "CANCELLED").inc()
            return empty_pb2.Empty()

        return await self._serve("CancelOperation", context, cancel)

    async def DeleteOperation(self, request, context):
        async def delete(call: Call, incoming: Incoming):
            store = self._require_store()
            job = await self._job(request.name)
            if not job.done:  # deleting a job also stops it: nobody could read its result
                _, cancelled = await asyncio.to_thread(store.cancel, request.name)
                if cancelled:
                    self._metrics.finished.labels(self._service, "CANCELLED").inc()
            if not await asyncio.to_thread(store.delete, request.name):
                raise _not_found(request.name)
            return empty_pb2.Empty()

        return await self._serve("DeleteOperation", context, delete)

    async def WaitOperation(self, request, context):
        async def wait(call: Call, incoming: Incoming):
            wait_s = self._wait_max_s
            if request.HasField("timeout"):
                wait_s = min(wait_s, request.timeout.ToTimedelta().total_seconds())
            deadline = time.monotonic() + max(0.0, min(wait_s, call.remaining() - WAIT_POLL_S))
            job = await self._job(request.name)
            while not job.done and time.monotonic() < deadline:
                await asyncio.sleep(WAIT_POLL_S)
                job = await self._job(request.name)
            return self._operation(job)

        return await self._serve("WaitOperation", context, wait)

    async def accept(
        self,
        call: Call,
        request: stt_pb2.LongRunningRecognizeRequest,
        metadata: tuple[tuple[str, str], ...],
        api: str = STT_API,
    ) -> operations_pb2.Operation:
        """LongRunningRecognize, on the router's request path: the job as an operation, in
        the dialect of `api`, the API the request came through."""
        if api not in self._dialects:
            raise Unimplemented(f"jobs cannot be submitted through the {api!r} API")
        if self._intake is None:
            raise Unimplemented(NO_STORE)
        if request.config.language_code.strip():
            call.language = "unknown"  # until a route is found for it
        call.language = self._intake.language_label(request.config.language_code)
        tenant = self._intake.tenant(metadata)
        job = await asyncio.to_thread(self._intake.submit, request, tenant, call.request_id, api)
        self._metrics.accepted.labels(self._service, api).inc()
        return self._operation(job)

    def sample_queue(self) -> None:
        """Reads the queue's size from the store for /metrics."""
        if self._store is None:
            return
        counts = self._store.counts()
        self._metrics.queued.labels(self._service).set(counts[QUEUED])
        self._metrics.running.labels(self._service).set(counts[RUNNING])

    async def _serve(self, method: str, context, work: Callable[[Call, Incoming], Awaitable]):
        """One Operations call on the router's request path (scope, readiness, errors,
        metrics), labelled with no language."""
        incoming = Incoming.from_grpc(STT_API, f"{OPERATIONS}/{method}", context)

        async def labelled(call: Call):
            call.language = NO_LANGUAGE
            return await work(call, incoming)

        return await grpc_front.unary(self._path, method, incoming, context, labelled)

    def _operation(self, job: Job) -> operations_pb2.Operation:
        return to_operation(job, self._dialects)

    def _tenant(self, incoming: Incoming) -> str | None:
        """The tenant that sent the call; None when it named none (then it lists every job)."""
        if self._intake is None:
            return None
        return self._intake.named_tenant(incoming.metadata)

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
