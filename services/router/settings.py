"""Router settings, read from `ROUTER_*`: where it listens, its routing table (see
`services/router/config.py` for the two forms), and the bounds of failover and health checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.core.server import MESSAGE_HEADROOM_BYTES
from services.core.settings import ServerSettings
from services.jobs.intake import QuotaPolicy
from services.jobs.settings import StoreSettings
from services.router import config

# The language services' default audio limit, so the router takes whatever they take.
DEFAULT_MAX_MESSAGE_BYTES = 2 * 64 * 1024 * 1024 + MESSAGE_HEADROOM_BYTES


class RouterSettings(StoreSettings, ServerSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTER_")

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
        "for Recognize with speaker diarization; empty: the routes file's, else none.",
    )
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
    health_interval_s: float = Field(
        1.0, gt=0, description="Time between health checks of each backend."
    )
    health_timeout_s: float = Field(1.0, gt=0, description="Deadline of one health check.")
    info_timeout_s: float = Field(
        2.0, gt=0, description="Deadline for each backend's answer to GetServiceInfo."
    )
    keepalive_time_s: float = Field(
        30.0, ge=10, description="Ping an idle backend connection this often to find dead ones."
    )
    keepalive_timeout_s: float = Field(
        10.0, gt=0, description="A ping unanswered this long closes the connection."
    )
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES,
        gt=0,
        description="Largest request message accepted, in bytes; also the largest "
        "LongRunningRecognize audio content (the default takes an hour of 16 kHz 16-bit WAV, "
        "and so of any compressed format).",
    )
    max_streams: int = Field(
        64, ge=1, description="Streams relayed at once; past it RESOURCE_EXHAUSTED."
    )
    stream_replay_bytes: int = Field(
        1024 * 1024,
        ge=0,
        description="Stream messages kept to replay to a fallback backend before the first "
        "answer; a longer stream is not retried.",
    )

    job_max_audio_seconds: float = Field(
        4 * 3600.0, gt=0, description="Longest LongRunningRecognize audio content accepted."
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
    tenant_header: str = Field(
        "x-tenant-id",
        description="Metadata key that names the tenant a job is charged to (else `default`).",
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

    @field_validator("tenant_header")
    @classmethod
    def _metadata_key(cls, value: str) -> str:
        return value.strip().lower()  # gRPC metadata keys arrive in lower case

    def quota_policy(self) -> QuotaPolicy:
        return QuotaPolicy(self.job_quota_hours, dict(self.job_quota_overrides), self.tenant_header)

    google_speech_api: bool = Field(
        True,
        description="Serve google.cloud.speech.v1.Speech on the gRPC port, for the clients "
        "of Google Cloud Speech v1.",
    )
    riva_asr_api: bool = Field(
        True,
        description="Serve nvidia.riva.asr.RivaSpeechRecognition on the gRPC port, for the "
        "clients of NVIDIA Riva ASR.",
    )
    openai_audio_api: bool = Field(
        True,
        description="Serve the OpenAI audio API (/v1/audio/transcriptions, "
        "/v1/audio/translations, /v1/models) on the HTTP port.",
    )
    openai_max_request_bytes: int = Field(
        64 * 1024 * 1024 + MESSAGE_HEADROOM_BYTES,
        gt=0,
        description="Largest OpenAI API request (the audio file and the form) in bytes; "
        "past it HTTP 413.",
    )

    @field_validator("backends", mode="before")
    @classmethod
    def _parse_backends(cls, value: object) -> object:
        return config.parse_backends(value) if isinstance(value, str) else value

    @field_validator("routes", mode="before")
    @classmethod
    def _parse_routes(cls, value: object) -> object:
        return config.parse_routes(value) if isinstance(value, str) else value

    def routing(self) -> config.RoutingConfig:
        """The routing table: the file's, with these settings' entries over it."""
        base = config.load_file(self.routes_file) if self.routes_file else config.RoutingConfig()
        routes: dict[str, tuple[str, ...]] = {}
        for pattern, chain in self.routes.items():
            config.add_route(routes, pattern, tuple(chain))
        top = config.RoutingConfig(dict(self.backends), routes, self.detector, self.diarization)
        return base.overlay(top)
