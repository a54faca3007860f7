"""Settings shared by every server: `ServerSettings` for anything that serves (the router and
the job worker too), `ModelSettings` for a server that hosts a model (the language services
and diarization), `ServiceSettings` for the language services. Each server subclasses with its
env prefix.

Every field is read from the environment (`<PREFIX>_<FIELD>`, e.g. `WHISPER_EN_GRPC_PORT`),
and the command line overrides it. A process's settings are one object, nested by concern: a
`SettingsGroup` field (the router's `failover`, `routing`, ...) reads its own fields with its
own prefix, so every variable keeps its flat name (`ROUTER_MAX_ATTEMPTS` is
`settings.failover.max_attempts`), and may be given flat to the constructor, by the name its
variable has without the process's prefix (`RouterSettings(max_attempts=2)`).
`docs/configuration.md` lists them all; a test keeps that list complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.core.names import DEFAULT_MAX_AUDIO_BYTES


class SettingsGroup(BaseSettings):
    """The settings of one concern. Its variables are named with the process's prefix and
    the group's `prefix` after it (`ROUTER_` + `OPENAI_` + `MAX_REQUEST_BYTES`), unless the
    group's `env_prefix` names them whole (a group several processes read alike)."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)
    prefix: ClassVar[str] = ""

    @classmethod
    def env_prefix_in(cls, process_prefix: str) -> str:
        return cls.model_config.get("env_prefix") or process_prefix + cls.prefix


class ProcessSettings(BaseSettings):
    """One process's settings: fields of its own, and `SettingsGroup` fields."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _make_groups(cls, data: Any) -> Any:
        """Each group is read from the environment with its prefix; values given by their
        flat names (`max_attempts` for `ROUTER_MAX_ATTEMPTS`) go to it first."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, kind in cls.groups().items():
            prefix = cls.flat_prefix(kind)
            given = {f: data.pop(prefix + f) for f in kind.model_fields if prefix + f in data}
            if name in data and given:
                raise ValueError(f"{name} is given both whole and by its fields {sorted(given)}")
            if name not in data:
                data[name] = kind(_env_prefix=kind.env_prefix_in(cls._own_prefix()), **given)
        return data

    @classmethod
    def _own_prefix(cls) -> str:
        return cls.model_config.get("env_prefix", "")

    @classmethod
    def groups(cls) -> dict[str, type[SettingsGroup]]:
        return {
            name: field.annotation
            for name, field in cls.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, SettingsGroup)
        }

    @classmethod
    def flat_prefix(cls, kind: type[SettingsGroup]) -> str:
        """What a group's field names take before them to be flat names: its variables'
        prefix beyond the process's (`ROUTER_OPENAI_` in `ROUTER_`: `openai_`)."""
        own, theirs = cls._own_prefix(), kind.env_prefix_in(cls._own_prefix())
        return theirs.removeprefix(own).lower() if theirs.startswith(own) else theirs.lower()

    @classmethod
    def variables(cls) -> Iterator[tuple[str, FieldInfo]]:
        """Every variable the process reads, with the field that reads it (for the docs)."""
        own, groups = cls._own_prefix(), cls.groups()
        for name, field in cls.model_fields.items():
            if name not in groups:
                yield f"{own}{name}".upper(), field
                continue
            prefix = groups[name].env_prefix_in(own)
            for inner, inner_field in groups[name].model_fields.items():
                yield f"{prefix}{inner}".upper(), inner_field


def group(kind: type[SettingsGroup], description: str) -> Any:
    """A group field (made by `ProcessSettings` from the environment unless given)."""
    return Field(default=None, description=description)


class ServerSettings(ProcessSettings):
    """Every server's: where it listens, how long it drains, what it logs."""

    host: str = Field("127.0.0.1", description="Address the servers bind.")
    http_port: int = Field(
        9090, ge=0, le=65535, description="HTTP port for /metrics, /healthz, /readyz; 0 picks."
    )
    drain_grace_s: float = Field(
        20.0, ge=0, description="On SIGTERM: time given to in-flight requests before exit."
    )
    log_level: str = Field("info", description="debug, info, warning or error.")


class GrpcServerSettings(ServerSettings):
    """A server with a gRPC port (every one but the job worker)."""

    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")


class ModelSettings(GrpcServerSettings):
    model: str = Field(description="Model to serve: a local path or a hub id.")
    max_concurrency: int = Field(4, ge=1, description="Inferences run at the same time.")
    max_queue: int = Field(
        2, ge=0, description="Requests that may wait for a slot; past it RESOURCE_EXHAUSTED."
    )
    queue_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait in the queue before RESOURCE_EXHAUSTED."
    )
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$", description="auto, cpu or cuda.")
    cpu_threads: int = Field(
        0, ge=0, description="Threads per inference on CPU; 0 lets the runtime decide."
    )
    inference_nice: int = Field(
        2,
        ge=0,
        le=19,
        description=(
            "Nice levels the model threads run below the event loop (Linux): raise it where "
            "probes or refusals lag while inference fills every core; it costs some throughput."
        ),
    )
    max_audio_bytes: int = Field(
        DEFAULT_MAX_AUDIO_BYTES, gt=0, description="Largest audio content accepted, in bytes."
    )
    max_audio_seconds: float = Field(
        900.0, gt=0, description="Longest audio accepted in one request, in seconds."
    )
    vad_threshold: float = Field(0.5, gt=0, lt=1, description="Silero speech probability.")
    vad_min_silence_ms: int = Field(500, ge=0, description="Pause length that ends a speech span.")
    vad_speech_pad_ms: int = Field(200, ge=0, description="Audio kept on each side of speech.")


class ServiceSettings(ModelSettings):
    compute_type: str = Field(
        "auto",
        description="Precision: auto (float16 on GPU, int8 on CPU), or e.g. float32, int8_float16.",
    )
    gpu_memory_fraction: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Share of GPU memory a torch backend may take (CTranslate2 has no such cap).",
    )
    cache_size: int = Field(256, ge=0, description="Results kept in the LRU cache; 0 disables.")
    vad_enabled: bool = Field(True, description="Default for the per-request VAD switch.")
    max_chunk_seconds: float = Field(
        30.0, gt=1, description="Longest piece of speech sent to the model in one call."
    )
    stream_endpoint_silence_ms: int = Field(
        250, ge=64, description="Streaming: pause that ends an utterance and gives its final."
    )
    stream_interim_interval_s: float = Field(
        0.5, gt=0, description="Streaming: new audio between two interim decodes."
    )
    stream_beam_size: int = Field(
        1,
        ge=1,
        le=16,
        description="Streaming: beam width of finals when the request sets none (latency first).",
    )
    stream_max_utterance_s: float = Field(
        30.0, gt=1, description="Streaming: an utterance this long gets a forced final."
    )
    stream_max_seconds: float = Field(
        3600.0, gt=0, description="Streaming: longest stream; past it OUT_OF_RANGE."
    )
    stream_max_buffer_bytes: int = Field(
        4 * 1024 * 1024,
        gt=0,
        description="Streaming: compressed audio waiting to be decoded; past it OUT_OF_RANGE.",
    )
