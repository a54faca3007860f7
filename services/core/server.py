"""Model servers: one model behind one gRPC service, on the core's `ServerHost`.

`ModelServer` wires the core's parts (gate, call scope, VAD) around a model and loads and
warms it up after the server listens; `SpeechServer` hosts a language service's backend behind
stt.v1.Speech, and the diarization service hosts its own on the same base.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Protocol

import grpc
from stt.v1 import stt_pb2_grpc

import services
from services.core.audio import AudioLimits
from services.core.backend import Backend
from services.core.batching import Batcher, limits_for
from services.core.cache import ResultCache
from services.core.calls import CallScope
from services.core.fanout import Fanout
from services.core.gate import Gate
from services.core.health import Lifecycle
from services.core.host import ServerHost
from services.core.metrics import ServiceMetrics
from services.core.names import SPEECH_SERVICE, message_limit
from services.core.priority import model_threads
from services.core.recognizer import Recognizer
from services.core.servicer import SpeechServicer
from services.core.settings import ModelSettings, ServiceSettings
from services.core.vad import VadSettings, VoiceActivityDetector

log = logging.getLogger("stt.server")


class Loadable(Protocol):
    """What a model server loads before it serves: a language service's or diarization's
    backend."""

    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    @property
    def info(self): ...


class Hosted(Protocol):
    """The servicer a `ModelServer` hosts."""

    def shutdown(self) -> None: ...


class ModelServer(ServerHost):
    """A subclass sets `grpc_service` (the full service name its health entry carries), makes
    `servicer` in its constructor, and adds it to the gRPC server in `add_servicer`."""

    grpc_service: str = ""

    def __init__(
        self,
        service: str,
        settings: ModelSettings,
        backend: Loadable,
        metrics: ServiceMetrics,
        stream_audio_timeout_s: float | None = None,
    ):
        super().__init__(service, settings, Lifecycle([self.grpc_service], metrics), metrics)
        self.backend = backend
        self.vad = VoiceActivityDetector(
            VadSettings(
                threshold=settings.vad_threshold,
                min_silence_ms=settings.vad_min_silence_ms,
                speech_pad_ms=settings.vad_speech_pad_ms,
            )
        )
        self.gate = Gate(settings.max_concurrency, settings.max_queue, settings.queue_timeout_s)
        self.calls = CallScope(
            service, self.lifecycle, metrics, stream_audio_timeout_s=stream_audio_timeout_s
        )
        self.servicer: Hosted | None = None

    def add_servicer(self, server: grpc.aio.Server) -> None:
        raise NotImplementedError

    @property
    def max_message_bytes(self) -> int:
        return message_limit(self.settings.max_audio_bytes)

    def add_services(self, server: grpc.aio.Server) -> list[str]:
        self.add_servicer(server)
        return [self.grpc_service]

    def busy(self) -> int:
        return self.calls.in_flight

    async def close(self) -> None:
        self.servicer.shutdown()

    async def load(self) -> None:
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
            raise
        finally:
            loader.shutdown(wait=False)
        self._ready(loaded - started, warm - loaded)

    def _ready(self, load_s: float, warmup_s: float) -> None:
        info = self.backend.info
        self.metrics.model_load_seconds.labels(self.service, info.model).set(load_s)
        self.metrics.warmup_seconds.labels(self.service, info.model).set(warmup_s)
        self.metrics.info.labels(
            self.service, services.__version__, info.model, info.device, info.precision
        ).set(1)
        # Everything allocated so far lives as long as the process: keep the collector off it.
        gc.collect()
        gc.freeze()
        log.info(
            "ready",
            extra={
                "model": info.model,
                "device": info.device,
                "precision": info.precision,
                "load_s": round(load_s, 3),
                "warmup_s": round(warmup_s, 3),
            },
        )


class SpeechServer(ModelServer):
    """A language service: its backend behind stt.v1.Speech."""

    grpc_service = SPEECH_SERVICE

    def __init__(self, service: str, settings: ServiceSettings, backend: Backend):
        super().__init__(
            service, settings, backend, ServiceMetrics(service), settings.stream_audio_timeout_s
        )
        limits = limits_for(
            settings.max_batch_size,
            settings.batch_window_ms,
            settings.max_concurrency,
            backend.planned_device(),
        )
        self.batcher = Batcher(limits, self.metrics, settings.inference_nice)
        backend.attach(self.batcher)
        self.fanout = Fanout(
            settings.max_concurrency * limits.max_batch_size if backend.batches else 1,
            settings.inference_nice,
        )
        recognizer = Recognizer(
            backend,
            self.vad,
            AudioLimits(settings.max_audio_bytes, settings.max_audio_seconds),
            ResultCache(settings.cache_size),
            self.metrics,
            settings.max_chunk_seconds,
            self.batcher,
            self.fanout,
        )
        self.servicer = SpeechServicer(
            service,
            settings,
            backend,
            recognizer,
            self.gate,
            self.calls,
            self.lifecycle,
            self.metrics,
            self.batcher,
        )

    def add_servicer(self, server: grpc.aio.Server) -> None:
        stt_pb2_grpc.add_SpeechServicer_to_server(self.servicer, server)

    async def close(self) -> None:
        await super().close()
        self.fanout.shutdown()
        self.batcher.shutdown()
