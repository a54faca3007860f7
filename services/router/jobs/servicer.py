"""google.longrunning.Operations on the router's port: get, list (paged), cancel, delete and
wait for the jobs LongRunningRecognize accepted, through stt.v1 or a drop-in API (each job's
operation is packed in the dialect of the API it came through; see `operations.py`), and
LongRunningRecognize's acceptance for every API that submits jobs. Each call is served in the
router's call scope (ids, traces, readiness, its tenant, errors, metrics) like any other; the
store calls block, so they run on threads.

Jobs are their tenant's: every call finds the caller's own jobs only (the store's queries name
the tenant), so another tenant's job is NOT_FOUND exactly as a name that does not exist, and a
call that names no tenant is the default tenant's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import empty_pb2
from stt.v1 import stt_pb2

from services.core.calls import Call, CallScope
from services.core.errors import InvalidArgument, NotFound, Unimplemented
from services.core.names import OPERATIONS_SERVICE
from services.core.rpc import unary_rpc
from services.jobs.store import QUEUED, RUNNING, Job, Store
from services.router.jobs.intake import JobIntake
from services.router.jobs.operations import (
    STT_API,
    STT_ONLY,
    Dialect,
    page_token,
    read_done_filter,
    read_page_token,
    to_operation,
)
from services.router.metrics import RouterMetrics

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 500
WAIT_POLL_S = 0.25
COLLECTIONS = ("", "operations")
NO_LANGUAGE = "none"  # the metrics label of calls about operations
NO_STORE = (
    "this router keeps no jobs: set ROUTER_DATA_DIR or ROUTER_DATABASE_URL (stt up sets a "
    "data directory)"
)


class OperationsServicer(operations_pb2_grpc.OperationsServicer):
    api = STT_API
    rpc_service = OPERATIONS_SERVICE
    request_id_of = None

    def __init__(
        self,
        calls: CallScope,
        store: Store | None,
        intake: JobIntake | None,
        job_language: Callable[[str], str],
        metrics: RouterMetrics,
        wait_max_s: float,
        dialects: Mapping[str, Dialect] = STT_ONLY,
    ):
        self.calls = calls
        self._store = store
        self._intake = intake
        self._job_language = job_language
        self._dialects = dialects
        self._metrics = metrics.jobs
        self._service = metrics.service
        self._wait_max_s = wait_max_s

    @unary_rpc
    async def GetOperation(self, call: Call, request):
        call.language = NO_LANGUAGE
        return self._operation(await self._job(call, request.name))

    @unary_rpc
    async def ListOperations(self, call: Call, request):
        call.language = NO_LANGUAGE
        store = self._require_store()
        if request.name not in COLLECTIONS:
            raise InvalidArgument(f"name {request.name!r} is not a collection; use operations")
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be 0 to {MAX_PAGE_SIZE}")
        size = request.page_size or DEFAULT_PAGE_SIZE
        done = read_done_filter(request.filter)
        after = read_page_token(request.page_token)
        # One more than the page holds says whether another page follows.
        jobs = await asyncio.to_thread(store.list, call.tenant, done, size + 1, after)
        reply = operations_pb2.ListOperationsResponse(
            operations=[self._operation(job) for job in jobs[:size]]
        )
        if len(jobs) > size:
            reply.next_page_token = page_token(jobs[size - 1])
        return reply

    @unary_rpc
    async def CancelOperation(self, call: Call, request):
        call.language = NO_LANGUAGE
        store = self._require_store()
        job, cancelled = await asyncio.to_thread(store.cancel, request.name, call.tenant)
        if job is None:
            raise _not_found(request.name)
        if cancelled:
            self._metrics.finished.labels(self._service, "CANCELLED").inc()
        return empty_pb2.Empty()

    @unary_rpc
    async def DeleteOperation(self, call: Call, request):
        call.language = NO_LANGUAGE
        store = self._require_store()
        job = await self._job(call, request.name)
        if not job.done:  # deleting a job also stops it: nobody could read its result
            _, cancelled = await asyncio.to_thread(store.cancel, request.name, call.tenant)
            if cancelled:
                self._metrics.finished.labels(self._service, "CANCELLED").inc()
        if not await asyncio.to_thread(store.delete, request.name, call.tenant):
            raise _not_found(request.name)
        return empty_pb2.Empty()

    @unary_rpc
    async def WaitOperation(self, call: Call, request):
        call.language = NO_LANGUAGE
        wait_s = self._wait_max_s
        if request.HasField("timeout"):
            wait_s = min(wait_s, request.timeout.ToTimedelta().total_seconds())
        deadline = time.monotonic() + max(0.0, min(wait_s, call.remaining() - WAIT_POLL_S))
        job = await self._job(call, request.name)
        while not job.done and time.monotonic() < deadline:
            await asyncio.sleep(WAIT_POLL_S)
            job = await self._job(call, request.name)
        return self._operation(job)

    async def accept(
        self, call: Call, request: stt_pb2.LongRunningRecognizeRequest
    ) -> operations_pb2.Operation:
        """LongRunningRecognize, in the call scope of the API it came through: the job as an
        operation, in that API's dialect."""
        api = call.api
        if api not in self._dialects:
            raise Unimplemented(f"jobs cannot be submitted through the {api!r} API")
        if self._intake is None:
            raise Unimplemented(NO_STORE)
        if request.config.language_code.strip():
            call.language = "unknown"  # until a route is found for it
        call.language = self._job_language(request.config.language_code)
        job = await asyncio.to_thread(
            self._intake.submit, request, call.tenant, call.request_id, api
        )
        self._metrics.accepted.labels(self._service, api).inc()
        return self._operation(job)

    def sample_queue(self) -> None:
        """Reads the queue's size from the store for /metrics."""
        if self._store is None:
            return
        counts = self._store.counts()
        self._metrics.queued.labels(self._service).set(counts[QUEUED])
        self._metrics.running.labels(self._service).set(counts[RUNNING])

    def _operation(self, job: Job) -> operations_pb2.Operation:
        return to_operation(job, self._dialects)

    def _require_store(self) -> Store:
        if self._store is None:
            raise Unimplemented(NO_STORE)
        return self._store

    async def _job(self, call: Call, name: str) -> Job:
        """The caller's job `name`; another tenant's is not found, as an unknown one."""
        job = await asyncio.to_thread(self._require_store().get, name, call.tenant)
        if job is None:
            raise _not_found(name)
        return job


def _not_found(name: str) -> NotFound:
    return NotFound(f"there is no operation {name!r} (unknown, deleted, or its result expired)")
