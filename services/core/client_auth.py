"""What a client of the router shows as its identity: an API key, kept in a file (a mounted
Secret, or the file `stt keys new` printed into), sent as `authorization: Bearer KEY`. The job
workers call the router with one; `stt transcribe` and `stt check` with `--api-key-file`.

The file is read again when it changes (a renewed Secret swaps a link), so a new key is used
with no restart; a file that no longer holds a key keeps the last one. The key never appears
in a log or an error.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("stt.client_auth")
AUTHORIZATION = "authorization"


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file, never its content."""


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    """The metadata (or headers) that show `key`."""
    return ((AUTHORIZATION, f"Bearer {key}"),)


class KeyFile:
    def __init__(self, path: Path):
        self.path = path
        self._seen = _signature(path)
        self._key = _read(path)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The key's metadata, the file read again first if it changed."""
        seen = _signature(self.path)
        if seen != self._seen:
            self._seen = seen
            try:
                self._key = _read(self.path)
            except KeyFileError as error:
                log.error(
                    "API key file changed but cannot be used; the key already read is kept",
                    extra={"error": str(error)},
                )
        return bearer(self._key)


def _signature(path: Path) -> tuple | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _read(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise KeyFileError(f"API key file {path} cannot be read: {error.strerror}") from None
    except UnicodeDecodeError:  # its message would show a byte of the key
        raise KeyFileError(f"API key file {path} is not UTF-8 text") from None
    if not key or any(c.isspace() for c in key) or not key.isprintable():
        raise KeyFileError(f"API key file {path} must hold one key, on one line")
    return key
