"""The language services `stt serve` knows, by name, each a module with `Settings` and `Backend`.

Modules are imported only when served, so the client commands never load a model library.
"""

from __future__ import annotations

import importlib
from types import ModuleType

SERVICES = {
    "arabic_words": "services.arabic_words.service",
    "hausa_stt": "services.hausa_stt.service",
    "whisper_en": "services.whisper_en.service",
}


def load(name: str) -> ModuleType:
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(sorted(SERVICES))}")
    return importlib.import_module(SERVICES[name])
