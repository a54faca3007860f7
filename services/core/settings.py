"""Settings shared by every server: `ServerSettings` for anything that serves (the router and
the job worker too), `ModelSettings` for a server that hosts a model (the language services
and diarization), `ServiceSettings` for the language services. Each server subclasses with its
env prefix.

Every field is read from the environment (`<PREFIX>_<FIELD>`, e.g. `WHISPER_EN_GRPC_PORT`),
and the command line overrides it. A process's settings are one object, nested by concern
(see `settings_groups.py`): every server's TLS is its `tls` group (`WHISPER_EN_TLS_CERT_FILE`
is `settings.tls.cert_file`). `docs/configuration.md` lists them all; a test keeps that list
complete.
"""

from __future__ import annotations

from pydantic import Field

from services.core.names import DEFAULT_MAX_AUDIO_BYTES
from services.core.settings_groups import ProcessSettings, SettingsGroup, group
from services.core.tls_settings import ServerTlsSettings

__all__ = ["ProcessSettings", "SettingsGroup", "group"]


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
    health_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Plain-text HTTP port serving /healthz and /readyz only, for probes that "
        "cannot speak TLS (the kubelet's) while the other ports serve TLS; unset: none.",
    )
    tls: ServerTlsSettings = group(ServerTlsSettings, "TLS on the server's ports.")


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
        0,
        ge=0,
        description=(
            "Threads per inference on CPU; 0: whisper_en shares the cores out among its model "
            "replicas (their threads together never more than the cores), torch decides for "
            "the others."
        ),
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
        description=(
            "Share of the GPU's memory the service may take: torch backends cap their "
            "allocator at it; whisper_en measures its model and a batch at warm-up and sizes "
            "max_batch_size and the batches at once to stay under it."
        ),
    )
    cache_size: int = Field(256, ge=0, description="Results kept in the LRU cache; 0 disables.")
    max_batch_size: int = Field(
        0,
        ge=0,
        le=256,
        description=(
            "Pieces of speech (and model windows) of concurrent requests decoded together at "
            "most; 1 turns batching off; 0: 8 on a GPU, 1 on a CPU, where batches measured "
            "slower than passes run alone (docs/benchmarks.md). Batches run at once: "
            "max_concurrency / max_batch_size, rounded up."
        ),
    )
    batch_window_ms: float = Field(
        50.0,
        ge=0,
        le=1000,
        description=(
            "How long a ready piece waits for another to join its batch while other "
            "requests are still preparing theirs (each joining piece restarts the wait, at "
            "most 4 windows in all); a lone request never waits."
        ),
    )
    vad_enabled: bool = Field(True, description="Default for the per-request VAD switch.")
    max_chunk_seconds: float = Field(
        30.0, gt=1, description="Longest piece of speech sent to the model in one call."
    )
    stream_batching: bool = Field(
        False,
        description=(
            "Streaming: decode streams' passes in batches with other streams' and requests' "
            "(off: each decode alone and at once; on a 2-core CPU batching halved the streams "
            "held under 1 s to final, see docs/benchmarks.md)."
        ),
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
    stream_audio_timeout_s: float = Field(
        15.0,
        gt=0,
        description="Streaming: a stream whose client sends no message for this long ends with "
        "OUT_OF_RANGE, and its inference slot is free.",
    )
    stream_max_buffer_bytes: int = Field(
        4 * 1024 * 1024,
        gt=0,
        description="Streaming: compressed audio waiting to be decoded; past it OUT_OF_RANGE.",
    )
