"""Hosts one model as a gRPC service: build, start, load and warm up, serve, drain.

`ModelServer` wires the core's parts (gate, health, probes, metrics, VAD) around a model and
one servicer; `SpeechServer` hosts a language service's backend behind stt.v1.Speech, and the
diarization service hosts its own on the same base. Tests build one in process on port 0 and
the command line calls `serve`, which runs until SIGTERM or SIGINT and then drains. The router
hosts itself with the same `grpc_server` and `serve`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from stt.v1 import stt_pb2, stt_pb2_grpc

import services
from services.core.audio import AudioLimits
from services.core.backend import Backend
from services.core.cache import ResultCache
from services.core.gate import Gate
from services.core.health import Lifecycle, State
from services.core.http import HttpServer
from services.core.metrics import ServiceMetrics
from services.core.priority import model_threads
from services.core.recognizer import Recognizer
from services.core.servicer import SpeechServicer
from services.core.settings import ModelSettings, ServerSettings, ServiceSettings
from services.core.vad import VadSettings, VoiceActivityDetector

log = logging.getLogger("stt.server")
SPEECH_SERVICE = stt_pb2.DESCRIPTOR.services_by_name["Speech"].full_name
# The transport takes messages up to twice the audio limit (plus room for the config), so a clip
# somewhat over the limit gets the service's own precise INVALID_ARGUMENT; only a far larger
# message meets gRPC's RESOURCE_EXHAUSTED "larger than max", before it is read into memory.
MESSAGE_HEADROOM_BYTES = 1024 * 1024
DRAIN_POLL_S = 0.05
# The router pings its backends' idle connections to find dead ones; gRPC servers refuse
# (GOAWAY "too many pings") pings more often than every 5 minutes unless told otherwise.
MIN_PING_INTERVAL_MS = 10_000


class Loadable(Protocol):
    """What a server loads before it serves: a language service's or diarization's backend."""

    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    @property
    def info(self): ...


class Hosted(Protocol):
    """The servicer a `ModelServer` hosts."""

    def shutdown(self) -> None: ...


class ModelServer:
    """One model behind one gRPC service, with the core's gate, health, probes and metrics.

    A subclass sets `grpc_service` (the full service name its health entry carries), makes
    `servicer` in its constructor, and adds it to the gRPC server in `add_servicer`.
    """

    grpc_service: str = ""

    def __init__(
        self, service: str, settings: ModelSettings, backend: Loadable, metrics: ServiceMetrics
    ):
        self.service = service
        self.settings = settings
        self.backend = backend
        self.metrics = metrics
        self.lifecycle = Lifecycle([self.grpc_service], self.metrics)
        self.vad = VoiceActivityDetector(
            VadSettings(
                threshold=settings.vad_threshold,
                min_silence_ms=settings.vad_min_silence_ms,
                speech_pad_ms=settings.vad_speech_pad_ms,
            )
        )
        self.gate = Gate(settings.max_concurrency, settings.max_queue, settings.queue_timeout_s)
        self.servicer: Hosted | None = None
        self.http = HttpServer(settings.host, settings.http_port, self.lifecycle, self.metrics)
        self._grpc: grpc.aio.Server | None = None
        self.grpc_port = 0
        self._loading: asyncio.Task | None = None

    def add_servicer(self, server: grpc.aio.Server) -> None:
        raise NotImplementedError

    @property
    def http_port(self) -> int:
        return self.http.port

    async def start(self) -> None:
        """Starts answering at once (NOT_SERVING), then loads and warms the model behind it."""
        self._grpc = self._grpc_server()
        self.grpc_port = self._grpc.add_insecure_port(
            f"{self.settings.host}:{self.settings.grpc_port}"
        )
        await self.lifecycle.set(State.STARTING)
        await self._grpc.start()
        await self.http.start()
        log.info("listening", extra={"grpc_port": self.grpc_port, "http_port": self.http_port})
        self._loading = asyncio.create_task(self._load_and_warm_up())

    def _grpc_server(self) -> grpc.aio.Server:
        limit = 2 * self.settings.max_audio_bytes + MESSAGE_HEADROOM_BYTES
        return grpc_server(self.add_servicer, [self.grpc_service], self.lifecycle, limit)

    async def wait_loaded(self) -> bool:
        """Waits for the model; True when SERVING, False when loading failed."""
        if self._loading:
            await self._loading
        return self.lifecycle.ready

    async def drain(self, grace_s: float) -> None:
        """Refuses new work, lets accepted requests finish within `grace_s`, then stops.

        Health turns NOT_SERVING first and the server keeps answering meanwhile, so load
        balancers see the change and new requests get UNAVAILABLE rather than a reset.
        """
        if self.lifecycle.state is not State.FAILED:
            await self.lifecycle.set(State.DRAINING)
        log.info("draining", extra={"grace_s": grace_s, "in_flight": self.gate.in_flight})
        deadline = time.monotonic() + grace_s
        while self.gate.in_flight + self.gate.queued and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        if self._grpc is not None:
            await self._grpc.stop(max(0.0, deadline - time.monotonic()))
        if self._loading and not self._loading.done():
            self._loading.cancel()
        self.servicer.shutdown()
        await self.http.stop()
        log.info("stopped")

    async def _load_and_warm_up(self) -> None:
        model = self.settings.model
        # A thread of its own, ended once the model is warm: the threads the runtime starts
        # while loading inherit its priority, and loading on asyncio's shared executor
        # instead made requests take about 1.4 times as long (bench.run, side by side).
        loader = model_threads(1, "model-load", self.settings.inference_nice)
        loop = asyncio.get_running_loop()
        try:
            started = time.perf_counter()
            await loop.run_in_executor(loader, self.backend.load)
            await loop.run_in_executor(loader, self.vad.load)
            loaded = time.perf_counter()
            await loop.run_in_executor(loader, self.backend.warm_up)
            warm = time.perf_counter()
        except Exception:
            log.exception("model failed to load", extra={"model": model})
            await self.lifecycle.set(State.FAILED)
            return
        finally:
            loader.shutdown(wait=False)
        info = self.backend.info
        self.metrics.model_load_seconds.labels(self.service, info.model).set(loaded - started)
        self.metrics.warmup_seconds.labels(self.service, info.model).set(warm - loaded)
        self.metrics.info.labels(
            self.service, services.__version__, info.model, info.device, info.precision
        ).set(1)
        # Everything allocated so far lives as long as the process: keep the collector off it.
        gc.collect()
        gc.freeze()
        await self.lifecycle.set(State.SERVING)
        log.info(
            "ready",
            extra={
                "model": info.model,
                "device": info.device,
                "precision": info.precision,
                "load_s": round(loaded - started, 3),
                "warmup_s": round(warm - loaded, 3),
            },
        )


class SpeechServer(ModelServer):
    """A language service: its backend behind stt.v1.Speech."""

    grpc_service = SPEECH_SERVICE

    def __init__(self, service: str, settings: ServiceSettings, backend: Backend):
        super().__init__(service, settings, backend, ServiceMetrics(service))
        recognizer = Recognizer(
            backend,
            self.vad,
            AudioLimits(settings.max_audio_bytes, settings.max_audio_seconds),
            ResultCache(settings.cache_size),
            self.metrics,
            settings.max_chunk_seconds,
        )
        self.servicer = SpeechServicer(
            service, settings, backend, recognizer, self.gate, self.lifecycle, self.metrics
        )

    def add_servicer(self, server: grpc.aio.Server) -> None:
        stt_pb2_grpc.add_SpeechServicer_to_server(self.servicer, server)


def grpc_server(
    add_servicer: Callable[[grpc.aio.Server], None],
    service_names: list[str],
    lifecycle: Lifecycle,
    max_message_bytes: int,
) -> grpc.aio.Server:
    """A server with `add_servicer`'s services, health and reflection, as every stt-suite
    server runs it.

    Made on the running event loop, which grpc.aio binds the server to.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
        ]
    )
    add_servicer(server)
    health_pb2_grpc.add_HealthServicer_to_server(lifecycle.health, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection(
        [*service_names, health_name, reflection.SERVICE_NAME], server
    )
    return server


def speech_grpc_server(
    servicer: stt_pb2_grpc.SpeechServicer,
    lifecycle: Lifecycle,
    max_message_bytes: int,
    handlers: Sequence[grpc.GenericRpcHandler] = (),
    reflected: Sequence[str] = (),
) -> grpc.aio.Server:
    """A server for stt.v1.Speech (the router's) with health and reflection.

    `handlers` serve more services beside it (the router's Google and Riva APIs), and
    `reflected` names those that reflection lists.
    """

    def add_servicers(server: grpc.aio.Server) -> None:
        stt_pb2_grpc.add_SpeechServicer_to_server(servicer, server)
        server.add_generic_rpc_handlers(tuple(handlers))

    return grpc_server(add_servicers, [SPEECH_SERVICE, *reflected], lifecycle, max_message_bytes)


class Servable(Protocol):
    """What `serve` runs: a `ModelServer` (a language service, diarization), or the router."""

    settings: ServerSettings

    async def start(self) -> None: ...

    async def wait_loaded(self) -> bool: ...

    async def drain(self, grace_s: float) -> None: ...


async def serve(server: Servable) -> int:
    """Runs until SIGTERM/SIGINT (exit 0 after draining) or a failed start-up (exit 1)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    loaded = asyncio.create_task(server.wait_loaded())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({loaded, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if loaded.done() and not loaded.result():
        await server.drain(0)
        return 1
    await stopping
    await server.drain(server.settings.drain_grace_s)
    return 0
