"""Reads a job's audio from its `uri`: a `file://` path on the worker's machine, or an
`http(s)://` URL (a pre-signed object-store link), within a size and a time bound.

A uri that names nothing readable fails the job with INVALID_ARGUMENT; a network failure or
a server error is `Transient`, and a later attempt at the job tries again. Messages never show
a URL's query string, which holds the signature of a pre-signed link.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from services.core.errors import InvalidAudio

READ_BLOCK_BYTES = 1 << 20


class Transient(Exception):
    """A failure a later attempt at the job may not meet (network, a server's 5xx, a timeout)."""


def read_uri(uri: str, max_bytes: int, timeout_s: float) -> bytes:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return _read_file(Path(unquote(parsed.path)), max_bytes)
    return _fetch(uri, max_bytes, timeout_s)


def shown(uri: str) -> str:
    """The uri without its query and fragment, for messages and logs."""
    parsed = urlparse(uri)
    return parsed._replace(query="", fragment="").geturl()


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InvalidAudio(f"audio.uri names {path}, which is not a file")
        if size > max_bytes:
            raise InvalidAudio(_too_large(f"file {path}", size, max_bytes))
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidAudio(f"audio.uri names {path}, which does not exist") from None
    except PermissionError:
        raise InvalidAudio(f"audio.uri names {path}, which the worker may not read") from None


def _fetch(uri: str, max_bytes: int, timeout_s: float) -> bytes:
    deadline = time.monotonic() + timeout_s
    where = shown(uri)
    try:
        with urllib.request.urlopen(uri, timeout=timeout_s) as reply:
            declared = reply.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise InvalidAudio(_too_large(where, int(declared), max_bytes))
            return _read_body(reply, where, max_bytes, deadline, timeout_s)
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            raise Transient(f"fetching {where} failed: HTTP {error.code} {error.reason}") from None
        raise InvalidAudio(
            f"audio.uri {where} could not be fetched: HTTP {error.code} {error.reason}"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise Transient(f"fetching {where} failed: {reason}") from None


def _read_body(reply, where: str, max_bytes: int, deadline: float, timeout_s: float) -> bytes:
    parts, total = [], 0
    while block := reply.read(READ_BLOCK_BYTES):
        total += len(block)
        if total > max_bytes:
            raise InvalidAudio(_too_large(where, total, max_bytes, at_least=True))
        if time.monotonic() > deadline:
            raise Transient(f"fetching {where} took longer than {timeout_s:g} s")
        parts.append(block)
    return b"".join(parts)


def _too_large(what: str, size: int, limit: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"audio at {what} is {more}{size} bytes, over the job limit of {limit} bytes"
