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
from services.router.routing import DIARIZATION_BACKEND, RoutingTable
from services.router.settings import RouterSettings


async def service_info(
    table: RoutingTable, pool: BackendPool, lifecycle: RouterLifecycle, settings: RouterSettings
) -> stt_pb2.ServiceInfo:
    backends = await asyncio.gather(*(_backend_info(b, settings.info_timeout_s) for b in pool))
    speech = [b for b in backends if b.service != DIARIZATION_BACKEND]
    return stt_pb2.ServiceInfo(
        service="router",
        version=services.__version__,
        language_codes=table.languages,
        ready=lifecycle.all_covered,
        state=INFO_STATES[lifecycle.state],
        max_audio_bytes=settings.max_message_bytes,
        streaming_supported=any(b.streaming_supported for b in speech),
        backends=backends,
        routes=[stt_pb2.Route(pattern=r.pattern, backends=r.backends) for r in table.routes],
    )


async def _backend_info(backend: BackendChannel, timeout_s: float) -> stt_pb2.ServiceInfo:
    if backend.health_service != SPEECH_SERVICE:
        # Not a Speech service (diarization): what its health check last said.
        return stt_pb2.ServiceInfo(
            service=backend.name,
            backend_name=backend.name,
            target=backend.target,
            ready=backend.serving,
        )
    try:
        info = await backend.speech.GetServiceInfo(
            stt_pb2.GetServiceInfoRequest(), timeout=timeout_s
        )
    except grpc.aio.AioRpcError:
        info = stt_pb2.ServiceInfo(ready=False)
    info.backend_name = backend.name
    info.target = backend.target
    return info
