"""The services `stt serve` knows, by name, each a module with `Settings` and `Backend` (and
`Server` when it is not a language service's `SpeechServer`), and the router's and the job
workers' settings.

Modules are imported only when served, so the client commands never load a model library.
"""

from __future__ import annotations

import importlib
from types import ModuleType

SERVICES = {
    "arabic_words": "services.arabic_words.service",
    "diarization": "services.diarization.service",
    "hausa_stt": "services.hausa_stt.service",
    "whisper_en": "services.whisper_en.service",
}
ROUTER_SETTINGS = "services.router.settings"
WORKER_SETTINGS = "services.jobs.settings"


def load(name: str) -> ModuleType:
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(sorted(SERVICES))}")
    return importlib.import_module(SERVICES[name])


def settings_classes() -> list[tuple[str, type]]:
    """Every server's settings class, by name: the services, the router, the worker."""
    classes = [(name, load(name).Settings) for name in sorted(SERVICES)]
    router = importlib.import_module(ROUTER_SETTINGS).RouterSettings
    worker = importlib.import_module(WORKER_SETTINGS).WorkerSettings
    return [*classes, ("router", router), ("worker", worker)]
