"""An LRU cache of finished results, keyed by the audio bytes and every option that changes them."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import astuple
from typing import Generic, TypeVar

V = TypeVar("V")


def cache_key(content: bytes, *options: object) -> str:
    """sha256 over the audio and a stable rendering of the options (dataclasses as tuples)."""
    digest = hashlib.sha256(content)
    for option in options:
        rendered = astuple(option) if hasattr(option, "__dataclass_fields__") else option
        digest.update(b"\x00" + repr(rendered).encode())
    return digest.hexdigest()


class ResultCache(Generic[V]):
    """Thread-safe; a capacity of 0 turns caching off."""

    def __init__(self, capacity: int):
        self._capacity = capacity
        self._items: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._capacity > 0

    def get(self, key: str) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: V) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
