"""What the router serves, for its GetServiceInfo and the drop-in APIs' model lists: its
routing table, and what every backend says of itself, asked of all backends at once with a
short deadline."""

from __future__ import annotations

import asyncio

import grpc
from stt.v1 import stt_pb2

from services.core.names import SPEECH_SERVICE
from services.router.config import ANY
from services.router.pool import BackendChannel, BackendPool
from services.router.routing import RoutingTable


async def describe(table: RoutingTable, pool: BackendPool, timeout_s: float) -> stt_pb2.ServiceInfo:
    speech = [b for b in pool if b.health_service == SPEECH_SERVICE]
    backends = await asyncio.gather(*(_backend_info(b, timeout_s) for b in speech))
    return stt_pb2.ServiceInfo(
        service="router",
        language_codes=_languages(table, backends),
        streaming_supported=any(b.streaming_supported for b in backends),
        backends=[*backends, *_other_infos(pool)],
        routes=[stt_pb2.Route(pattern=r.pattern, backends=r.backends) for r in table.routes],
    )


def _languages(table: RoutingTable, infos: list[stt_pb2.ServiceInfo]) -> list[str]:
    """The routes' patterns; for the route of any code (`*`), the languages its backends say
    they serve (every language Whisper knows, for whisper_en), the others' patterns kept."""
    patterns = [p for p in table.languages if p != ANY]
    if len(patterns) == len(table.languages):
        return patterns
    anywhere = next(r.backends for r in table.routes if r.pattern == ANY)
    known = {
        code for info in infos if info.backend_name in anywhere for code in info.language_codes
    }
    return sorted(known | set(patterns))


def _other_infos(pool: BackendPool) -> list[stt_pb2.ServiceInfo]:
    """The backends that are not Speech services (diarization): what their health check
    last said, as they have no GetServiceInfo to ask."""
    return [
        stt_pb2.ServiceInfo(service=b.name, backend_name=b.name, target=b.target, ready=b.healthy)
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
