"""API keys that name tenants: the router's keys file (`ROUTER_API_KEYS_FILE`).

One key a line, `TENANT sha256:HEX`, HEX being the SHA-256 of the key, so the file holds no
key itself; `#` starts a comment, blank lines are skipped. A caller shows its key as
`authorization: Bearer KEY` (gRPC metadata, or the HTTP header an OpenAI client sends), and
its tenant is the one the key names.

The file is read again when it changes (its path is looked at, at most once a second on a
lookup: a renewed Kubernetes Secret swaps a link, so an open file would go stale). A file that
no longer parses is logged and the keys already loaded are kept; at start-up it is an error.
A presented key is hashed and compared with every stored digest, in constant time each and
with no early exit. Keys never appear in logs or errors, nor do the lines that would hold one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from services.core.tenants import TENANT_RULE, is_tenant

KEY_PREFIX = "stt_"
KEY_BYTES = 32
DIGEST_PREFIX = "sha256:"
CHECK_INTERVAL_S = 1.0
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")

log = logging.getLogger("stt.keys")


class KeysFileError(ValueError):
    """A keys file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class _Entry:
    tenant: str
    digest: bytes


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def parse(text: str, source: str) -> tuple[_Entry, ...]:
    """The entries of a keys file's text; `source` names the file in errors."""
    entries: list[_Entry] = []
    lines: dict[bytes, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{source} line {number}"
        if len(fields) != 2:
            raise KeysFileError(f"{where}: expected `TENANT sha256:HEX`, not {len(fields)} fields")
        tenant, stored = fields
        if not is_tenant(tenant):
            raise KeysFileError(f"{where}: a tenant is {TENANT_RULE}")
        hex_digest = stored.removeprefix(DIGEST_PREFIX)
        if not stored.startswith(DIGEST_PREFIX) or not _HEX.match(hex_digest):
            raise KeysFileError(
                f"{where}: expected {DIGEST_PREFIX} and the 64 hex digits of the key's SHA-256 "
                "(the file holds no key itself; `stt keys new` writes the line)"
            )
        value = bytes.fromhex(hex_digest)
        if value in lines:
            raise KeysFileError(f"{where}: the same key as line {lines[value]}")
        lines[value] = number
        entries.append(_Entry(tenant, value))
    return tuple(entries)


def _signature(path: Path) -> tuple | None:
    try:
        info = os.stat(path)  # follows links: a swapped link shows a new inode
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _read(path: Path) -> tuple[_Entry, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise KeysFileError(f"keys file {path} cannot be read: {error}") from None
    return parse(text, f"keys file {path}")


class ApiKeys:
    """The tenants the keys in a keys file name. Made at start-up: raises KeysFileError when
    the file cannot be read or a line is malformed."""

    def __init__(
        self,
        path: Path,
        check_interval_s: float = CHECK_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = path
        self._interval = check_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seen = _signature(path)
        self._entries = _read(path)
        self._checked = clock()

    def __len__(self) -> int:
        return len(self._entries)

    def tenant(self, key: str) -> str | None:
        """The tenant `key` names, or None for a key not in the file."""
        self._reload_if_due()
        presented = digest(key)
        found = None
        for entry in self._entries:
            # Every digest is compared, whichever matches: the time taken tells nothing.
            if hmac.compare_digest(entry.digest, presented):
                found = entry.tenant
        return found

    def tenant_of(self, headers: Iterable[tuple[str, object]]) -> str | None:
        """The tenant of the key a call shows in `authorization: Bearer KEY` (gRPC metadata or
        HTTP headers, as name and value pairs), or None when it shows no key or an unknown one."""
        key = bearer(headers)
        return None if key is None else self.tenant(key)

    def _reload_if_due(self) -> None:
        now = self._clock()
        if now - self._checked < self._interval:
            return
        with self._lock:
            if now - self._checked < self._interval:
                return
            self._checked = now
            seen = _signature(self.path)
            if seen == self._seen:
                return
            self._seen = seen
            try:
                entries = _read(self.path)
            except KeysFileError as error:
                log.error(
                    "keys file changed but cannot be used; the keys already loaded are kept",
                    extra={"keys_file": str(self.path), "error": str(error)},
                )
                return
            self._entries = entries
            log.info(
                "keys file loaded again", extra={"keys_file": str(self.path), "keys": len(entries)}
            )


def bearer(headers: Iterable[tuple[str, object]]) -> str | None:
    """The key of `authorization: Bearer KEY`, or None when there is none, or different ones
    (the same one twice is one: Riva's client over TLS sends its metadata twice)."""
    values = {v for k, v in headers if k.lower() == "authorization"}
    if len(values) != 1:
        return None
    value = values.pop()
    if not isinstance(value, str):
        return None
    scheme, _, key = value.strip().partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def new_key(tenant: str) -> tuple[str, str]:
    """A fresh random key for `tenant`, and its line for the keys file."""
    if not is_tenant(tenant):
        raise ValueError(f"a tenant is {TENANT_RULE}, not {tenant!r}")
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    return key, f"{tenant} {DIGEST_PREFIX}{digest(key).hex()}"


def append_line(path: Path, line: str) -> None:
    """Adds `line` to the keys file at `path`, made readable by its owner only when new."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        ends_open = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        os.write(fd, (("\n" if ends_open else "") + line + "\n").encode("utf-8"))
    finally:
        os.close(fd)
