"""Hosts a job worker as a process (`stt worker`, and the worker `stt up` starts) on the core's
`ServerHost`: no gRPC port, /metrics, /healthz and /readyz on its HTTP port, the worker loop on
a thread of its own, its calls through the router on the event loop, and a drain on SIGTERM
that hands the job in hand back to the queue (at once: its finished chunks are kept).
"""

from __future__ import annotations

import asyncio
import logging

from services.core.client_auth import KeyFile
from services.core.health import Lifecycle
from services.core.host import ServerHost
from services.jobs.settings import open_store
from services.jobs.worker.calls import RouterCalls
from services.jobs.worker.metrics import WorkerMetrics
from services.jobs.worker.settings import WorkerSettings
from services.jobs.worker.worker import Worker

log = logging.getLogger("stt.worker")
WORKER = "worker"
# Beyond the drain's grace: how long the worker thread gets to let go of its job.
LET_GO_S = 5.0


class WorkerServer(ServerHost):
    serves_grpc = False

    def __init__(self, settings: WorkerSettings):
        metrics = WorkerMetrics(WORKER)
        super().__init__(WORKER, settings, Lifecycle([], metrics), metrics)
        self.store = open_store(settings.store)
        key = KeyFile(settings.api_key_file) if settings.api_key_file else None
        self.calls = RouterCalls(
            settings.target,
            settings.diarization_target,
            settings.calls,
            metrics,
            settings.target_tls.files(),
            key,
        )
        self.worker = Worker(settings, self.store, self.calls, metrics)
        self._running: asyncio.Future | None = None

    async def open(self) -> None:
        await self.calls.open()

    async def load(self) -> None:
        try:
            await asyncio.to_thread(self.worker.load)
        except Exception:
            log.exception("the voice activity detector failed to load")
            raise
        log.info(
            "worker ready",
            extra={
                "worker": self.worker.name,
                "target": self.settings.target,
                "http_port": self.http_port,
            },
        )
        self._running = asyncio.ensure_future(asyncio.to_thread(self.worker.run))

    def busy(self) -> int:
        return int(self._running is not None and not self._running.done())

    async def quiesce(self) -> None:
        """Stops claiming, and hands the job in hand back."""
        self.worker.stop()

    async def close(self) -> None:
        if self._running is not None and not self._running.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._running), LET_GO_S)
            except TimeoutError:
                log.warning("the worker did not let go of its job in time")
        await self.calls.close()
        self.store.close()
