"""Helpers for the job tests: a router with a job store, workers in process or as processes,
and the calls a client of the Operations service makes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from stt.v1 import stt_pb2

from services.jobs.worker.server import WorkerServer
from services.jobs.worker.settings import WorkerSettings
from services.router.settings import RouterSettings
from tests.support import REPO, RunningServer, running_router

# Short leases and quick polls, so that recovery takes seconds in the tests.
FAST_WORKER = dict(
    lease_s=3.0,
    heartbeat_s=0.5,
    poll_s=0.2,
    chunk_seconds=30.0,
    http_port=0,
    retry_max_s=2.0,
)


def router_settings(backend_target: str, **store) -> RouterSettings:
    return RouterSettings(
        grpc_port=0,
        http_port=0,
        backends={"whisper_en": f"dns:///{backend_target}"},
        routes="en*=whisper_en",
        health_interval_s=0.2,
        **store,
    )


@contextlib.contextmanager
def jobs_router(backend_target: str, **store) -> Iterator[RunningServer]:
    with running_router(router_settings(backend_target, **store)) as router:
        router.operations = operations_pb2_grpc.OperationsStub(router.channel)
        yield router


def worker_settings(target: str, **overrides) -> WorkerSettings:
    return WorkerSettings(target=target, **{**FAST_WORKER, **overrides})


class RunningWorker:
    """A worker in this process, on its own event-loop thread (as `stt worker` runs it)."""

    def __init__(self, settings: WorkerSettings):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.server = self._call(_start_worker(settings))
        assert self._call(self.server.wait_loaded()), "the worker failed to start"
        self.http = f"http://127.0.0.1:{self.server.http_port}"

    def _call(self, coroutine, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        self._call(self.server.drain(5))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


async def _start_worker(settings: WorkerSettings) -> WorkerServer:
    server = WorkerServer(settings)
    await server.start()
    return server


@contextlib.contextmanager
def running_worker(settings: WorkerSettings) -> Iterator[RunningWorker]:
    worker = RunningWorker(settings)
    try:
        yield worker
    finally:
        worker.stop()


def worker_process(target: str, store_flags: list[str], log: Path, **overrides) -> subprocess.Popen:
    """`stt worker` as its own process (to be killed), with the tests' short leases."""
    settings = {**FAST_WORKER, **overrides}
    env = {**os.environ, **{f"WORKER_{k.upper()}": str(v) for k, v in settings.items()}}
    command = [sys.executable, "-m", "services.cli", "worker", "--target", target, *store_flags]
    with open(log, "ab") as sink:
        return subprocess.Popen(command, env=env, cwd=REPO, stdout=sink, stderr=sink)


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(10)


def submit(router, content: bytes | None = None, uri: str = "", metadata=(), **config):
    audio = stt_pb2.RecognitionAudio(content=content) if content is not None else None
    if uri:
        audio = stt_pb2.RecognitionAudio(uri=uri)
    request = stt_pb2.LongRunningRecognizeRequest(
        config=stt_pb2.RecognitionConfig(**config), audio=audio
    )
    return router.stub.LongRunningRecognize(request, timeout=60, metadata=metadata)


def get(router, name: str, metadata=()) -> operations_pb2.Operation:
    return router.operations.GetOperation(
        operations_pb2.GetOperationRequest(name=name), metadata=metadata, timeout=10
    )


def wait_done(router, name: str, within_s: float = 240) -> operations_pb2.Operation:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        operation = get(router, name)
        if operation.done:
            return operation
        time.sleep(0.2)
    raise AssertionError(f"operation {name} was not done within {within_s} s")


def metadata_of(operation) -> stt_pb2.LongRunningRecognizeMetadata:
    found = stt_pb2.LongRunningRecognizeMetadata()
    assert operation.metadata.Unpack(found)
    return found


def response_of(operation) -> stt_pb2.LongRunningRecognizeResponse:
    assert operation.HasField("response"), f"the job failed: {operation.error}"
    found = stt_pb2.LongRunningRecognizeResponse()
    assert operation.response.Unpack(found)
    return found


def job_transcript(operation) -> str:
    results = response_of(operation).results
    return " ".join(r.alternatives[0].transcript for r in results).strip()


def code_of(operation) -> grpc.StatusCode:
    return next(c for c in grpc.StatusCode if c.value[0] == operation.error.code)
