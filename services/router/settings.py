"""Router settings, read from `ROUTER_*`, nested by concern: where it listens (the core's
server settings, its TLS among them), who may call it (API keys, tenants and their shares),
its routing table (see `services/router/config.py` for the two forms), its backends' channels,
their TLS and health checks, failover, stream relays, jobs (and the job URI policy, `JOBS_URI_*`,
which the workers read alike), and each drop-in API. Every variable keeps its flat name
(`ROUTER_MAX_ATTEMPTS` is `settings.failover.max_attempts`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.core.names import (
    DEFAULT_MAX_AUDIO_BYTES,
    JOB_MAX_AUDIO_SECONDS,
    MESSAGE_HEADROOM_BYTES,
    MIN_PING_INTERVAL_S,
    TENANT_HEADER,
    message_limit,
)
from services.core.settings import GrpcServerSettings, SettingsGroup, group
from services.core.tls_settings import BackendTlsSettings
from services.jobs.buckets import BucketSettings
from services.jobs.settings import StoreSettings
from services.jobs.uri_policy import UriPolicySettings
from services.router import config


class RoutingSettings(SettingsGroup):
    routes_file: Path | None = Field(
        None, description="YAML routing table: backends, routes and detector (see the README)."
    )
    backends: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description=(
            "Backend targets, `name=target;...` (e.g. `whisper_en=dns:///whisper-en:50051`); "
            "they replace the routes file's backends of the same name."
        ),
    )
    routes: Annotated[dict[str, tuple[str, ...]], NoDecode] = Field(
        default_factory=dict,
        description=(
            "Routes, `pattern=backend,backend;...` (e.g. `en*=whisper_en;ha=hausa_stt,whisper_en`);"
            " they replace the routes file's routes of the same pattern."
        ),
    )
    detector: str = Field(
        "",
        description="Backend that detects the language when a request gives none; "
        "empty: the routes file's, else whisper_en when it is a backend.",
    )
    diarization: str = Field(
        "",
        description="gRPC target of the diarization service (e.g. `dns:///diarization:50051`), "
        "for Recognize with speaker diarization and the job workers' Diarize; empty: the "
        "routes file's, else none.",
    )

    @field_validator("backends", mode="before")
    @classmethod
    def _parse_backends(cls, value: object) -> object:
        return config.parse_backends(value) if isinstance(value, str) else value

    @field_validator("routes", mode="before")
    @classmethod
    def _parse_routes(cls, value: object) -> object:
        return config.parse_routes(value) if isinstance(value, str) else value

    def table(self) -> config.RoutingConfig:
        """The routing table: the file's, with these settings' entries over it."""
        base = config.load_file(self.routes_file) if self.routes_file else config.RoutingConfig()
        routes: dict[str, tuple[str, ...]] = {}
        for pattern, chain in self.routes.items():
            config.add_route(routes, pattern, tuple(chain))
        top = config.RoutingConfig(dict(self.backends), routes, self.detector, self.diarization)
        return base.overlay(top)


class ChannelSettings(SettingsGroup):
    """The channels to the backends and their health checks."""

    health_interval_s: float = Field(
        1.0, gt=0, description="Time between health checks of each backend."
    )
    health_timeout_s: float = Field(1.0, gt=0, description="Deadline of one health check.")
    info_timeout_s: float = Field(
        2.0, gt=0, description="Deadline for each backend's answer to GetServiceInfo."
    )
    keepalive_time_s: float = Field(
        30.0,
        ge=MIN_PING_INTERVAL_S,
        description="Ping an idle backend connection this often to find dead ones (servers "
        f"refuse pings more frequent than every {MIN_PING_INTERVAL_S:g} s).",
    )
    keepalive_timeout_s: float = Field(
        10.0, gt=0, description="A ping unanswered this long closes the connection."
    )


class FailoverSettings(SettingsGroup):
    max_attempts: int = Field(
        4, ge=1, description="Most backend calls one request makes, over replicas and fallbacks."
    )
    tries_per_backend: int = Field(
        2,
        ge=1,
        description="Calls to one backend (each may reach another replica) before the next one.",
    )
    default_timeout_s: float = Field(
        300.0, gt=0, description="Deadline given to backend calls when the client set none."
    )


class RelaySettings(SettingsGroup):
    """StreamingRecognize relayed to the backends."""

    max_streams: int = Field(
        64, ge=1, description="Streams relayed at once; past it RESOURCE_EXHAUSTED."
    )
    stream_replay_bytes: int = Field(
        1024 * 1024,
        ge=0,
        description="Stream messages kept to replay to a fallback backend before the first "
        "answer; a longer stream is not retried.",
    )
    stream_audio_timeout_s: float = Field(
        15.0,
        gt=0,
        description="A stream whose client sends no message for this long ends with "
        "OUT_OF_RANGE, and its place is free.",
    )


class JobSettings(StoreSettings):
    """The job store (see `StoreSettings`), and LongRunningRecognize and Operations."""

    job_max_audio_seconds: float = Field(
        JOB_MAX_AUDIO_SECONDS,
        gt=0,
        description="Longest LongRunningRecognize audio content accepted (the workers' "
        "WORKER_MAX_AUDIO_SECONDS has the same default).",
    )
    job_quota_hours: float = Field(
        0.0,
        ge=0,
        description="Daily quota of job audio hours per tenant (UTC days); 0: no quota.",
    )
    job_quota_overrides: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=dict,
        description="Quotas of particular tenants, `tenant=hours;...`, over job_quota_hours.",
    )
    wait_max_s: float = Field(
        60.0, gt=0, description="Longest WaitOperation wait, whatever the request asks."
    )

    @field_validator("job_quota_overrides", mode="before")
    @classmethod
    def _parse_quota_overrides(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = (entry.partition("=") for entry in value.split(";") if entry.strip())
        return {tenant.strip(): float(hours) for tenant, _, hours in pairs}


class GoogleSettings(SettingsGroup):
    prefix = "GOOGLE_"

    speech_api: bool = Field(
        True,
        description="Serve google.cloud.speech.v1.Speech, google.cloud.speech.v1p1beta1.Speech"
        " and google.cloud.speech.v2.Speech (Recognize and StreamingRecognize on the `_` "
        "recognizer) on the gRPC port, for the clients of Google Cloud Speech.",
    )


class RivaSettings(SettingsGroup):
    prefix = "RIVA_"

    asr_api: bool = Field(
        True,
        description="Serve nvidia.riva.asr.RivaSpeechRecognition on the gRPC port, for the "
        "clients of NVIDIA Riva ASR.",
    )


class OpenAISettings(SettingsGroup):
    prefix = "OPENAI_"

    audio_api: bool = Field(
        True,
        description="Serve the OpenAI audio API (/v1/audio/transcriptions, "
        "/v1/audio/translations, /v1/models) on the HTTP port.",
    )
    max_request_bytes: int = Field(
        DEFAULT_MAX_AUDIO_BYTES + MESSAGE_HEADROOM_BYTES,
        gt=0,
        description="Largest OpenAI API request (the audio file and the form) in bytes; "
        "past it HTTP 413. The default is a language service's default audio limit and room "
        "for the form.",
    )


class RouterSettings(GrpcServerSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTER_")

    max_message_bytes: int = Field(
        message_limit(DEFAULT_MAX_AUDIO_BYTES),
        gt=0,
        description="Largest request message accepted, in bytes; also the largest "
        "LongRunningRecognize audio content. The default is the transport limit of a language "
        "service with its default audio limit, so the router takes whatever the services take "
        "(an hour of 16 kHz 16-bit WAV, and so of any compressed format).",
    )
    tenant_header: str = Field(
        TENANT_HEADER,
        description="Metadata key that names the caller's tenant (its jobs, its share; else "
        "`default`); with API keys it may only name the key's own tenant.",
    )
    api_keys_file: Path | None = Field(
        None,
        description="Keys file, one `TENANT sha256:HEX` a line (`stt keys new`): every call "
        "then needs `authorization: Bearer KEY`, and is its key's tenant's; read again when it "
        "changes. Unset: no key is asked for.",
    )
    tenant_max_in_flight: int = Field(
        0,
        ge=0,
        description="Calls (requests and streams) one tenant may have in flight at once; past "
        "it RESOURCE_EXHAUSTED while other tenants are served. 0: no limit.",
    )
    routing: RoutingSettings = group(RoutingSettings, "The routing table.")
    channels: ChannelSettings = group(ChannelSettings, "Backend channels and health checks.")
    backend_tls: BackendTlsSettings = group(BackendTlsSettings, "TLS to the backends.")
    failover: FailoverSettings = group(FailoverSettings, "Failover between backends.")
    streams: RelaySettings = group(RelaySettings, "Streams relayed to backends.")
    jobs: JobSettings = group(JobSettings, "The job store, LongRunningRecognize, Operations.")
    job_uris: UriPolicySettings = group(UriPolicySettings, "What a job's audio.uri may name.")
    buckets: BucketSettings = group(BucketSettings, "The buckets job audio may be read from.")
    google: GoogleSettings = group(GoogleSettings, "The Google Cloud Speech APIs.")
    riva: RivaSettings = group(RivaSettings, "The NVIDIA Riva ASR API.")
    openai: OpenAISettings = group(OpenAISettings, "The OpenAI audio API.")

    @field_validator("tenant_header")
    @classmethod
    def _metadata_key(cls, value: str) -> str:
        return value.strip().lower()  # gRPC metadata keys arrive in lower case

    @field_validator("api_keys_file", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
