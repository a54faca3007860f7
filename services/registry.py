"""Every service this build can run, one entry each: what `stt serve` and `stt fetch` know,
what `stt up` starts (with its ports and languages), and what the chart's defaults list (a
test holds `helm/stt-suite/values.yaml` to this table). Adding a language service is one entry
here (plus its package); the router's and the job workers' settings are listed for the docs.

Each service is a module with `Settings`, `Backend` and `fetch` (and `Server` when it is not a
language service's `SpeechServer`), imported only when served, so the client commands never
load a model library.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Member:
    service: str
    module: str  # the module `stt serve` loads
    grpc_port: int  # its ports under `stt up`
    http_port: int
    languages: tuple[str, ...]  # the route patterns it is the first choice for
    model_env: str | None = None  # the variable that must name a model; None: it has one
    requires: str | None = None  # a module that must be importable (its model's package)
    diarization: bool = False  # the diarization service, not a language service

    @property
    def target(self) -> str:
        return f"dns:///127.0.0.1:{self.grpc_port}"


MEMBERS = (
    # Whisper is multilingual: it is the first choice for English and for any language no
    # other service has (`*`); a code Whisper does not know is refused by whisper_en.
    Member("whisper_en", "services.whisper_en.service", 50052, 9091, ("en", "*")),
    Member(
        "hausa_stt",
        "services.hausa_stt.service",
        50053,
        9092,
        ("ha",),
        model_env="HAUSA_STT_MODEL",
    ),
    Member(
        "arabic_words",
        "services.arabic_words.service",
        50054,
        9093,
        ("ar",),
        model_env="ARABIC_WORDS_MODEL",
    ),
    Member(
        "diarization",
        "services.diarization.service",
        50055,
        9094,
        (),
        requires="resemblyzer",
        diarization=True,
    ),
)
SERVICES = {member.service: member for member in MEMBERS}
ROUTER_SETTINGS = "services.router.settings"
WORKER_SETTINGS = "services.jobs.worker.settings"


def load(name: str) -> ModuleType:
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(sorted(SERVICES))}")
    return importlib.import_module(SERVICES[name].module)


def settings_classes() -> list[tuple[str, type]]:
    """Every server's settings class, by name: the services, the router, the worker."""
    classes = [(name, load(name).Settings) for name in sorted(SERVICES)]
    router = importlib.import_module(ROUTER_SETTINGS).RouterSettings
    worker = importlib.import_module(WORKER_SETTINGS).WorkerSettings
    return [*classes, ("router", router), ("worker", worker)]
