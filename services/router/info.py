"""GetServiceInfo for the router: its own state and routing table, and what every backend
says of itself, asked of all backends at once with a short deadline."""

from __future__ import annotations

import asyncio

import grpc
from stt.v1 import stt_pb2

import services
from services.core.server import SPEECH_SERVICE
from services.core.servicer import INFO_STATES
from services.router.health import RouterLifecycle
from services.router.pool import BackendChannel, BackendPool
from services.router.routing import RoutingTable
from services.router.settings import RouterSettings


async def service_info(
    table: RoutingTable, pool: BackendPool, lifecycle: RouterLifecycle, settings: RouterSettings
) -> stt_pb2.ServiceInfo:
    backends = await backend_infos(pool, settings.info_timeout_s)
    return stt_pb2.ServiceInfo(
        service="router",
        version=services.__version__,
        language_codes=table.languages,
        ready=lifecycle.all_covered,
        state=INFO_STATES[lifecycle.state],
        max_audio_bytes=settings.max_message_bytes,
        streaming_supported=any(b.streaming_supported for b in backends),
        backends=[*backends, *_other_infos(pool)],
        routes=[stt_pb2.Route(pattern=r.pattern, backends=r.backends) for r in table.routes],
    )


async def backend_infos(pool: BackendPool, timeout_s: float) -> list[stt_pb2.ServiceInfo]:
    """What every language backend says of itself, asked of all at once."""
    speech = [b for b in pool if b.health_service == SPEECH_SERVICE]
    return list(await asyncio.gather(*(_backend_info(b, timeout_s) for b in speech)))


def _other_infos(pool: BackendPool) -> list[stt_pb2.ServiceInfo]:
    """The backends that are not Speech services (diarization): what their health check
    last said, as they have no GetServiceInfo to ask."""
    return [
        stt_pb2.ServiceInfo(service=b.name, backend_name=b.name, target=b.target, ready=b.serving)
        for b in pool
        if b.health_service != SPEECH_SERVICE
    ]


async def _backend_info(backend: BackendChannel, timeout_s: float) -> stt_pb2.ServiceInfo:
    try:
        info = await backend.speech.GetServiceInfo(
            stt_pb2.GetServiceInfoRequest(), timeout=timeout_s
        )
    except grpc.aio.AioRpcError:
        info = stt_pb2.ServiceInfo(ready=False)
    info.backend_name = backend.name
    info.target = backend.target
    return info
