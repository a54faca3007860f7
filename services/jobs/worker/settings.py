"""Job worker settings, read from `WORKER_*`, nested by concern: the core's server settings
(its HTTP port, its TLS), where it sends chunks, how it reaches the router (TLS,
`WORKER_TARGET_TLS_*`, and an API key), the job store, leases, the audio it reads (and the job
URI policy, `JOBS_URI_*`, which the router reads alike), and the patience of its calls. Every
variable keeps its flat name (`WORKER_LEASE_S` is `settings.leases.lease_s`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.core.names import JOB_MAX_AUDIO_SECONDS
from services.core.settings import ServerSettings, SettingsGroup, group
from services.core.tls_settings import TargetTlsSettings
from services.jobs.buckets import BucketSettings
from services.jobs.settings import StoreSettings
from services.jobs.uri_policy import UriPolicySettings

WORKER_HTTP_PORT = 9095


class LeaseSettings(SettingsGroup):
    """How a worker holds the job in hand, and how often it looks for the next."""

    lease_s: float = Field(
        30.0,
        gt=0,
        description="A claimed job returns to the queue this long after the "
        "worker's last heartbeat (a worker that died).",
    )
    heartbeat_s: float = Field(
        2.0, gt=0, description="Time between lease renewals; a cancel is noticed within it."
    )
    max_attempts: int = Field(
        3,
        ge=1,
        description="Attempts at a job (workers that died, transient failures) "
        "before it fails with the reason.",
    )
    poll_s: float = Field(1.0, gt=0, description="Time between looks at an empty queue.")
    purge_interval_s: float = Field(
        300.0, gt=0, description="Time between deletions of expired results."
    )

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> LeaseSettings:
        if self.heartbeat_s * 3 > self.lease_s:
            raise ValueError(
                f"WORKER_HEARTBEAT_S ({self.heartbeat_s:g}) must be at most a third of "
                f"WORKER_LEASE_S ({self.lease_s:g}), so that a few missed heartbeats do not "
                "hand a running job to another worker"
            )
        return self


class AudioSettings(SettingsGroup):
    """The job audio a worker reads and how it cuts it."""

    chunk_seconds: float = Field(
        240.0,
        gt=1,
        description=(
            "Longest stretch of audio sent in one Recognize call; chunks end in pauses. A "
            "language service decodes the 30-s pieces of one call together, so a chunk of "
            "about max_batch_size pieces fills its batches."
        ),
    )
    max_audio_seconds: float = Field(
        JOB_MAX_AUDIO_SECONDS,
        gt=0,
        description="Longest job audio accepted, in seconds (the router's "
        "ROUTER_JOB_MAX_AUDIO_SECONDS has the same default).",
    )
    max_audio_bytes: int = Field(
        1024 * 1024 * 1024, gt=0, description="Largest job audio read from a uri, in bytes."
    )
    fetch_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Longest time to fetch the audio of an http(s), gs:// or s3:// uri.",
    )


class CallSettings(SettingsGroup):
    """The patience of a worker's calls through the router: a full service is waited out,
    one that is down for long ends the attempt at the job."""

    recognize_timeout_s: float = Field(
        600.0, gt=0, description="Deadline of one chunk's Recognize call (and of Diarize)."
    )
    retry_max_s: float = Field(
        30.0, gt=0, description="Longest wait between retries of a refused (full, down) call."
    )
    unavailable_limit_s: float = Field(
        300.0,
        gt=0,
        description="How long the target may stay unavailable before the attempt fails "
        "(and the job is retried by a later attempt).",
    )


class WorkerSettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="WORKER_")

    http_port: int = Field(
        WORKER_HTTP_PORT,
        ge=0,
        le=65535,
        description="HTTP port for /metrics, /healthz, /readyz; 0 picks a free one.",
    )
    drain_grace_s: float = Field(
        10.0, ge=0, description="On SIGTERM: time given to hand the job in hand back."
    )
    target: str = Field(
        "127.0.0.1:50051",
        description="The router whose Recognize transcribes each chunk, and whose Diarize "
        "labels the speakers of a job that asks for them.",
    )
    diarization_target: str = Field(
        "",
        description="Where Diarize goes instead of the router (a diarization service, "
        "reached the same way); empty: the router.",
    )
    api_key_file: Path | None = Field(
        None,
        description="File holding the API key the worker's calls to the router show (one of "
        "the router's ROUTER_API_KEYS_FILE; `stt keys new` prints it); read again when it "
        "changes. Unset: no key.",
    )
    target_tls: TargetTlsSettings = group(TargetTlsSettings, "TLS to the router.")
    store: StoreSettings = group(StoreSettings, "The job store.")
    leases: LeaseSettings = group(LeaseSettings, "Leases and polling.")
    audio: AudioSettings = group(AudioSettings, "Job audio.")
    buckets: BucketSettings = group(BucketSettings, "The buckets job audio may be read from.")
    calls: CallSettings = group(CallSettings, "Calls through the router.")
    job_uris: UriPolicySettings = group(UriPolicySettings, "What a job's audio.uri may name.")

    @field_validator("api_key_file", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
