"""Settings of the job store, shared by the router (which accepts jobs) and the workers (which
run them), and the workers' own (`WORKER_*`)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WORKER_HTTP_PORT = 9095


def default_data_dir() -> Path:
    """Where `stt up` and `stt worker` keep the embedded job store when given no --data-dir:
    `$XDG_DATA_HOME/stt-suite`, by default `~/.local/share/stt-suite`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stt-suite"


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    data_dir: Path | None = Field(
        None,
        description="Folder of the embedded job store (a SQLite file, `jobs.sqlite3`). A router "
        "with neither this nor a database URL serves no jobs; `stt up` and `stt worker` "
        "default to ~/.local/share/stt-suite.",
    )
    database_url: str = Field(
        "",
        description="PostgreSQL URL of the job store (`postgresql://user:password@host/db`); "
        "when set, used instead of the data directory.",
    )
    database_connections: int = Field(
        8, ge=1, description="Most PostgreSQL connections this process holds."
    )
    result_ttl_s: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description="How long a finished job and its result are kept, in seconds, then deleted "
        "(the router's for cancelled jobs, the worker's for those it ends).",
    )

    @property
    def jobs_enabled(self) -> bool:
        return bool(self.database_url or self.data_dir)


class WorkerSettings(StoreSettings):
    model_config = SettingsConfigDict(env_prefix="WORKER_")

    target: str = Field(
        "127.0.0.1:50051",
        description="The router (or a language service) whose Recognize transcribes each chunk.",
    )
    diarization_target: str = Field(
        "", description="The diarization service, for jobs that ask for speaker labels."
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    http_port: int = Field(
        WORKER_HTTP_PORT,
        ge=0,
        le=65535,
        description="HTTP port for /metrics, /healthz, /readyz; 0 picks a free one.",
    )
    log_level: str = Field("info", description="debug, info, warning or error.")
    drain_grace_s: float = Field(
        10.0, ge=0, description="On SIGTERM: time given to hand the job in hand back."
    )
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
    chunk_seconds: float = Field(
        60.0,
        gt=1,
        description="Longest stretch of audio sent in one Recognize call; chunks end in pauses.",
    )
    max_audio_seconds: float = Field(
        4 * 3600.0, gt=0, description="Longest job audio accepted, in seconds."
    )
    max_audio_bytes: int = Field(
        1024 * 1024 * 1024, gt=0, description="Largest job audio read from a uri, in bytes."
    )
    fetch_timeout_s: float = Field(
        300.0, gt=0, description="Longest time to fetch the audio of an http(s) uri."
    )
    recognize_timeout_s: float = Field(
        600.0, gt=0, description="Deadline of one chunk's Recognize call."
    )
    retry_max_s: float = Field(
        30.0, gt=0, description="Longest wait between retries of a refused (full, down) chunk."
    )
    unavailable_limit_s: float = Field(
        300.0,
        gt=0,
        description="How long the target may stay unavailable before the attempt fails "
        "(and the job is retried by a later attempt).",
    )
    purge_interval_s: float = Field(
        300.0, gt=0, description="Time between deletions of expired results."
    )

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> WorkerSettings:
        if self.heartbeat_s * 3 > self.lease_s:
            raise ValueError("heartbeat_s must be at most a third of lease_s")
        return self
