"""Hosts the router on the core's `ServerHost`: its backend pool, request path and job store;
on the gRPC port stt.v1.Speech, stt.v1.Diarization and google.longrunning.Operations with
health and reflection, and the Google (v1, v1p1beta1, v2) and Riva services; on the HTTP
port metrics, probes and the OpenAI audio API. Every call of every API is served in one call
scope, which names its tenant (from its API key when the router has a keys file) and holds
each tenant to its share. Drains like a language service on SIGTERM."""

from __future__ import annotations

import logging

import grpc
from google.longrunning import operations_pb2_grpc
from stt.v1 import stt_pb2_grpc

from services.core.audio import AudioLimits
from services.core.calls import CallScope
from services.core.host import ServerHost
from services.core.names import DIARIZATION_SERVICE, OPERATIONS_SERVICE, SPEECH_SERVICE
from services.core.tenants import TenantShares
from services.jobs.settings import open_store
from services.jobs.uri_policy import UriPolicy
from services.router.admission import RouterAdmission
from services.router.dropin import google_beta, google_jobs, riva_service
from services.router.dropin.google_service import API as GOOGLE_API
from services.router.dropin.google_service import VERSIONS as GOOGLE_VERSIONS
from services.router.dropin.google_service import GoogleSpeech
from services.router.dropin.google_v2_service import GoogleSpeechV2
from services.router.dropin.openai_routes import openai_routes
from services.router.dropin.riva_service import RivaSpeech
from services.router.health import RouterLifecycle
from services.router.jobs.intake import JobIntake, QuotaPolicy
from services.router.jobs.operations import STT_API, STT_DIALECT
from services.router.jobs.servicer import OperationsServicer
from services.router.keys import ApiKeys
from services.router.metrics import RouterMetrics
from services.router.path import RequestPath
from services.router.pool import BackendPool
from services.router.routing import DIARIZATION_BACKEND, RoutingTable
from services.router.servicer import RouterDiarization, RouterServicer
from services.router.settings import RouterSettings

log = logging.getLogger("stt.router")
ROUTER = "router"


class RouterServer(ServerHost):
    background_load = False  # it loads nothing: it serves once it listens

    def __init__(self, settings: RouterSettings, table: RoutingTable | None = None):
        self.table = table or RoutingTable(settings.routing.table())
        metrics = RouterMetrics(ROUTER)
        lifecycle = RouterLifecycle(self.table.languages, metrics)
        self.pool = BackendPool(
            self.table.pool_targets,
            settings.channels,
            metrics,
            self._backends_changed,
            {DIARIZATION_BACKEND: DIARIZATION_SERVICE},
            settings.backend_tls.files(),
        )
        self.path = RequestPath(settings, self.table, self.pool, metrics)
        # No log line per call: a line costs a cache hit through the router about a tenth
        # more CPU (bench.router), and each backend logs the call under the same request id.
        self.calls = CallScope(
            ROUTER,
            lifecycle,
            metrics,
            settings.failover.default_timeout_s,
            log_each_call=False,
            admission=self._admission(settings),
            shares=_shares(settings.tenant_max_in_flight),
            stream_audio_timeout_s=settings.streams.stream_audio_timeout_s,
        )
        self.store = open_store(settings.jobs) if settings.jobs.enabled else None
        # Jobs answer in the dialect they came in, even with that API since switched off.
        dialects = {
            STT_API: STT_DIALECT,
            GOOGLE_API: google_jobs.DIALECT,
            google_beta.API: google_beta.DIALECT,
        }
        self.operations = OperationsServicer(
            self.calls,
            self.store,
            self._intake(settings),
            self.path.job_language,
            metrics,
            settings.jobs.wait_max_s,
            dialects,
        )
        metrics.sample_queue = self.operations.sample_queue
        routes = []
        if settings.openai.audio_api:
            routes = openai_routes(self.calls, self.path, settings.openai.max_request_bytes)
        super().__init__(ROUTER, settings, lifecycle, metrics, routes)

    @property
    def max_message_bytes(self) -> int:
        return self.settings.max_message_bytes

    def add_services(self, server: grpc.aio.Server) -> list[str]:
        speech = RouterServicer(
            self.calls, self.path, self.operations, self.lifecycle, self.max_message_bytes
        )
        stt_pb2_grpc.add_SpeechServicer_to_server(speech, server)
        stt_pb2_grpc.add_DiarizationServicer_to_server(
            RouterDiarization(self.calls, self.path), server
        )
        operations_pb2_grpc.add_OperationsServicer_to_server(self.operations, server)
        reflected = [SPEECH_SERVICE, DIARIZATION_SERVICE, OPERATIONS_SERVICE]
        # Google's package ships no service descriptor, so reflection cannot list it.
        if self.settings.google.speech_api:
            server.add_generic_rpc_handlers(
                (
                    *(
                        GoogleSpeech(self.calls, self.path, self.operations, version).handler()
                        for version in GOOGLE_VERSIONS
                    ),
                    GoogleSpeechV2(self.calls, self.path).handler(),
                )
            )
        if self.settings.riva.asr_api:
            server.add_generic_rpc_handlers((RivaSpeech(self.calls, self.path).handler(),))
            reflected.append(riva_service.SERVICE)
        return reflected

    async def open(self) -> None:
        """Opens the backend channels and checks every backend once."""
        await self.pool.start()

    async def load(self) -> None:
        log.info(
            "routing",
            extra={
                "routes": {r.pattern: list(r.backends) for r in self.table.routes},
                "backends": self.table.backends,
                "diarization": self.table.diarization,
            },
        )

    def busy(self) -> int:
        return self.calls.in_flight

    async def close(self) -> None:
        await self.pool.close()
        self.path.shutdown()
        if self.store is not None:
            self.store.close()

    def _intake(self, settings: RouterSettings) -> JobIntake | None:
        """LongRunningRecognize's checks and quota, when the router keeps jobs."""
        if self.store is None:
            return None
        jobs = settings.jobs
        limits = AudioLimits(settings.max_message_bytes, jobs.job_max_audio_seconds)
        quota = QuotaPolicy(jobs.job_quota_hours, dict(jobs.job_quota_overrides))
        uris = UriPolicy.from_settings(settings.job_uris)
        return JobIntake(self.store, quota, limits, uris, settings.buckets.policy())

    @staticmethod
    def _admission(settings: RouterSettings) -> RouterAdmission:
        """Who each call is for; with a keys file, only calls with a known key are served
        (raises KeysFileError, a ValueError, when the file cannot be used)."""
        keys = ApiKeys(settings.api_keys_file) if settings.api_keys_file else None
        if keys is not None:
            log.info("API keys required", extra={"keys_file": str(keys.path), "keys": len(keys)})
        return RouterAdmission(keys, settings.tenant_header)

    async def _backends_changed(self) -> None:
        covered = {
            route.pattern: any(self.pool.healthy(name) for name in route.backends)
            for route in self.table.routes
        }
        await self.lifecycle.cover(covered)


def _shares(max_in_flight: int) -> TenantShares | None:
    if not max_in_flight:
        return None
    return TenantShares(max_in_flight, "ROUTER_TENANT_MAX_IN_FLIGHT")
