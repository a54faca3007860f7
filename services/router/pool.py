"""The router's backends: one gRPC channel per target, made once and shared by every request,
and a health check of each that the router consults to skip backends that are not serving.

A target is a gRPC name such as `dns:///whisper-en:50051` (a headless Service in the cluster:
one address per replica) or `ipv4:127.0.0.1:50061,127.0.0.1:50062`. The channel balances over
its addresses with `round_robin`, and its client-side health checking keeps replicas whose
`stt.v1.Speech` health is NOT_SERVING (loading, draining) out of the rotation.

With `ROUTER_BACKEND_TLS_CA_FILE` the channels speak TLS (mutual TLS with a client
certificate). A channel's credentials are fixed when it is made, so when the files change (a
renewed Secret) the pool makes new channels for every backend; requests already under way
finish on the old ones, which are closed a while later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stt.v1 import stt_pb2_grpc

from services.core.names import SPEECH_SERVICE
from services.core.tls import ClientFiles
from services.router.metrics import RouterMetrics
from services.router.settings import ChannelSettings

log = logging.getLogger("stt.router.pool")
# A replica that went away is tried again within seconds, not gRPC's default two minutes.
RECONNECT_BACKOFF_MS = (500, 5_000)
_SERVING = health_pb2.HealthCheckResponse.SERVING
# Channels replaced by new TLS files are closed this long after, when the calls on them ended.
RETIRED_CLOSE_S = 600.0


def service_config(health_service: str) -> dict:
    return {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": health_service},
    }


def channel_options(
    settings: ChannelSettings, health_service: str = SPEECH_SERVICE
) -> list[tuple[str, object]]:
    return [
        ("grpc.service_config", json.dumps(service_config(health_service))),
        ("grpc.keepalive_time_ms", round(settings.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", round(settings.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[0]),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[1]),
        ("grpc.max_send_message_length", -1),
        ("grpc.max_receive_message_length", -1),
        # The router chooses where a refused request goes next; gRPC must not retry on its own.
        ("grpc.enable_retries", 0),
    ]


class BackendChannel:
    """One named backend target: its channels and stubs, and whether it was last seen healthy.

    Streams go over a twin channel of the synchronous API: grpc.aio reports INTERNAL instead
    of the backend's own status when a backend ends a stream while a message is being sent
    (grpc/grpc#36066), and a stream refused at once must reach the client with its status.
    The router's own health checks go over a third channel: on the request channel each check
    would take a turn of round_robin, and checks and requests falling into step could send
    every request to the same replica.
    """

    def __init__(
        self,
        name: str,
        target: str,
        options: list[tuple[str, object]],
        health_service: str = SPEECH_SERVICE,
        credentials: grpc.ChannelCredentials | None = None,
    ):
        self.name = name
        self.target = target
        self.health_service = health_service  # the health entry that says it serves
        self.channel = _aio_channel(target, options, credentials)
        self.speech = stt_pb2_grpc.SpeechStub(self.channel)
        self.diarization = stt_pb2_grpc.DiarizationStub(self.channel)
        self.health_channel = _aio_channel(target, options, credentials)
        self.health = health_pb2_grpc.HealthStub(self.health_channel)
        if credentials is None:
            self.stream_channel = grpc.insecure_channel(target, options=options)
        else:
            self.stream_channel = grpc.secure_channel(target, credentials, options=options)
        self.streams = stt_pb2_grpc.SpeechStub(self.stream_channel)
        self.healthy = False  # its health check last said SERVING

    async def close(self) -> None:
        await self.channel.close()
        await self.health_channel.close()
        self.stream_channel.close()


def _aio_channel(target: str, options, credentials: grpc.ChannelCredentials | None):
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


class BackendPool:
    def __init__(
        self,
        backends: dict[str, str],
        settings: ChannelSettings,
        metrics: RouterMetrics,
        on_change: Callable[[], Awaitable[None]],
        health_services: dict[str, str] | None = None,
        tls: ClientFiles | None = None,
    ):
        self._targets = backends
        self._tls = tls
        # The gRPC service whose health tells whether a backend serves; stt.v1.Speech unless
        # named here (the diarization service's is stt.v1.Diarization).
        self._health_services = health_services or {}
        self._settings = settings
        self._metrics = metrics
        self._on_change = on_change
        self._backends: dict[str, BackendChannel] = {}
        self._watchers: list[asyncio.Task] = []
        self._retired: list[BackendChannel] = []

    def __getitem__(self, name: str) -> BackendChannel:
        return self._backends[name]

    def __iter__(self) -> Iterator[BackendChannel]:
        return iter(self._backends.values())

    def healthy(self, name: str) -> bool:
        return self._backends[name].healthy

    async def start(self) -> None:
        """Opens every channel (on the running loop, as grpc.aio needs), checks each backend
        once, then keeps checking in the background."""
        self._open_channels()
        for name in self._backends:
            self._metrics.backend_up.labels(self._metrics.service, name).set(0)
        await asyncio.gather(*(self._check(b) for b in self))
        await self._on_change()
        self._watchers = [asyncio.create_task(self._watch(name)) for name in self._backends]
        if self._tls is not None:
            self._watchers.append(asyncio.create_task(self._watch_tls()))

    async def close(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        for watcher in self._watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await asyncio.gather(*(b.close() for b in [*self, *self._retired]))

    def _open_channels(self) -> None:
        """A channel for every backend, with the TLS files as they are now; a backend's last
        known health carries over to its new channel."""
        credentials = None if self._tls is None else self._tls.credentials()
        for name, target in self._targets.items():
            health = self._health_services.get(name, SPEECH_SERVICE)
            options = channel_options(self._settings, health)
            backend = BackendChannel(name, target, options, health, credentials)
            if name in self._backends:
                backend.healthy = self._backends[name].healthy
            self._backends[name] = backend

    async def _watch(self, name: str) -> None:
        while True:
            await asyncio.sleep(self._settings.health_interval_s)
            if await self._check(self._backends[name]):
                await self._on_change()

    async def _watch_tls(self) -> None:
        """New channels when the TLS files change; the old ones closed once their calls ended."""
        while True:
            await asyncio.sleep(self._settings.health_interval_s)
            if not self._tls.changed():
                continue
            old = list(self)
            try:
                self._open_channels()
            except ValueError as error:  # TlsError: a file that cannot be read; try again
                log.error("backend TLS files cannot be used", extra={"error": str(error)})
                continue
            log.info("backend TLS files changed: new channels to every backend")
            self._retired.extend(old)
            self._watchers.append(asyncio.create_task(self._close_later(old)))

    async def _close_later(self, old: list[BackendChannel]) -> None:
        await asyncio.sleep(RETIRED_CLOSE_S)
        for backend in old:
            self._retired.remove(backend)
        await asyncio.gather(*(b.close() for b in old))

    async def _check(self, backend: BackendChannel) -> bool:
        """Asks the backend's health once; True when its serving state changed."""
        request = health_pb2.HealthCheckRequest(service=backend.health_service)
        try:
            reply = await backend.health.Check(request, timeout=self._settings.health_timeout_s)
            serving = reply.status == _SERVING
        except grpc.aio.AioRpcError:
            serving = False  # unreachable, or no replica is serving
        if serving == backend.healthy:
            return False
        backend.healthy = serving
        self._metrics.backend_up.labels(self._metrics.service, backend.name).set(int(serving))
        log.info(
            "backend health changed",
            extra={"backend": backend.name, "target": backend.target, "serving": serving},
        )
        return True
