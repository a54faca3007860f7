"""Hosts a job worker as a process (`stt worker`, and the worker `stt up` starts): the worker
loop on a thread, /metrics, /healthz and /readyz on its HTTP port, and a drain on SIGTERM that
hands the job in hand back to the queue. It runs under the core's `serve`, as the services do.
"""

from __future__ import annotations

import asyncio
import logging

from services.core.health import Lifecycle, State
from services.core.http import HttpServer
from services.jobs.db import open_database
from services.jobs.metrics import WorkerMetrics
from services.jobs.settings import WorkerSettings
from services.jobs.store import Store
from services.jobs.worker import Worker

log = logging.getLogger("stt.worker")
WORKER = "worker"


def open_store(settings: WorkerSettings) -> Store:
    database = open_database(
        settings.data_dir, settings.database_url, settings.database_connections
    )
    return Store(database, settings.result_ttl_s)


class WorkerServer:
    def __init__(self, settings: WorkerSettings):
        self.settings = settings
        self.metrics = WorkerMetrics(WORKER)
        self.lifecycle = Lifecycle([], self.metrics)
        self.store = open_store(settings)
        self.worker = Worker(settings, self.store, self.metrics)
        self.http = HttpServer(settings.host, settings.http_port, self.lifecycle, self.metrics)
        self._loading: asyncio.Task | None = None
        self._running: asyncio.Future | None = None

    @property
    def http_port(self) -> int:
        return self.http.port

    async def start(self) -> None:
        await self.lifecycle.set(State.STARTING)
        await self.http.start()
        self._loading = asyncio.create_task(self._load_and_run())

    async def _load_and_run(self) -> None:
        try:
            await asyncio.to_thread(self.worker.load)
        except Exception:
            log.exception("the voice activity detector failed to load")
            await self.lifecycle.set(State.FAILED)
            return
        await self.lifecycle.set(State.SERVING)
        log.info(
            "worker ready",
            extra={
                "worker": self.worker.name,
                "target": self.settings.target,
                "http_port": self.http_port,
            },
        )
        self._running = asyncio.ensure_future(asyncio.to_thread(self.worker.run))

    async def wait_loaded(self) -> bool:
        if self._loading is not None:
            await self._loading
        return self.lifecycle.ready

    async def drain(self, grace_s: float) -> None:
        """Stops claiming, hands the job in hand back (at once: its finished chunks are kept),
        and waits for the worker thread to let go of it."""
        if self.lifecycle.state is not State.FAILED:
            await self.lifecycle.set(State.DRAINING)
        self.worker.stop()
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        if self._running is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._running), grace_s + 5)
            except TimeoutError:
                log.warning("the worker did not let go of its job in time")
        await self.http.stop()
        self.store.close()
        log.info("stopped")
