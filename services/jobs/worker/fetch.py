"""Reads a job's audio from its `uri`: a `file://` path on the worker's machine, or an
`http(s)://` URL (a pre-signed object-store link), within a size and a time bound, held to the
job URI policy (`services/jobs/uri_policy.py`): a path under a file root, a connection only to
an address the policy allows (`services/jobs/worker/guarded_http.py`), and every redirect (at most
`MAX_REDIRECTS`) checked the same way before anything is sent to it.

A uri that names nothing readable fails the job with INVALID_ARGUMENT, one the policy refuses
with PERMISSION_DENIED; a network failure or a server error is `Transient`, and a later attempt
at the job tries again. Messages never show a URL's query string, which holds the signature of
a pre-signed link.
"""

from __future__ import annotations

import errno
import http.client
import os
import ssl
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

from services.core.errors import InvalidAudio, PermissionDenied
from services.jobs.uri_policy import UriPolicy
from services.jobs.worker import guarded_http

READ_BLOCK_BYTES = 1 << 20
MAX_REDIRECTS = 5
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
REDIRECT_SCHEMES = frozenset({"http", "https"})


class Transient(Exception):
    """A failure a later attempt at the job may not meet (network, a server's 5xx, a timeout)."""


def read_uri(
    uri: str,
    max_bytes: int,
    timeout_s: float,
    policy: UriPolicy | None,
    tls: ssl.SSLContext | None = None,
) -> bytes:
    """The bytes `uri` names. `policy` None reads whatever the worker can reach (a worker not
    given a policy); `tls` verifies https servers (default: the system's authorities)."""
    parsed = urlparse(uri)
    scheme = policy.scheme(parsed.scheme) if policy is not None else parsed.scheme
    if scheme == "file":
        return _read_file(uri, policy, max_bytes)
    return _fetch(uri, policy, max_bytes, timeout_s, tls)


def shown(uri: str) -> str:
    """The uri without its query and fragment, for messages and logs."""
    parsed = urlparse(uri)
    return parsed._replace(query="", fragment="").geturl()


def _read_file(uri: str, policy: UriPolicy | None, max_bytes: int) -> bytes:
    named = Path(unquote(urlparse(uri).path))
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    path = named
    if policy is not None:
        path = policy.file_path(uri)
        # The real path has no link in it: one that appeared since is not followed.
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InvalidAudio(f"audio.uri names {named}, which does not exist") from None
    except PermissionError:
        raise InvalidAudio(f"audio.uri names {named}, which the worker may not read") from None
    except OSError as error:
        if error.errno == errno.ELOOP and policy is not None:
            raise PermissionDenied(
                f"audio.uri names {named}, which changed as it was read"
            ) from None
        raise InvalidAudio(f"audio.uri names {named}, which cannot be read: {error}") from None
    try:
        if policy is not None and (opened := _opened_path(fd)) is not None:
            policy.check_real_path(opened, str(named))
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidAudio(f"audio.uri names {named}, which is not a file")
        if info.st_size > max_bytes:
            raise InvalidAudio(too_large(f"file {named}", info.st_size, max_bytes))
        content = _read_fd(fd, max_bytes + 1)
    finally:
        os.close(fd)
    if len(content) > max_bytes:
        raise InvalidAudio(too_large(f"file {named}", len(content), max_bytes, at_least=True))
    return content


def _read_fd(fd: int, most: int) -> bytes:
    parts, total = [], 0
    while total < most and (block := os.read(fd, min(READ_BLOCK_BYTES, most - total))):
        parts.append(block)
        total += len(block)
    return b"".join(parts)


def _opened_path(fd: int) -> str | None:
    """Where an open file really is (Linux), so a folder swapped for a link between the check
    and the open is still caught."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _fetch(
    uri: str, policy: UriPolicy | None, max_bytes: int, timeout_s: float, tls: ssl.SSLContext | None
) -> bytes:
    deadline = time.monotonic() + timeout_s
    opener = guarded_http.opener(policy, tls)
    url = uri
    for _ in range(MAX_REDIRECTS + 1):
        try:
            return _get(opener, url, uri, max_bytes, deadline, timeout_s)
        except _Redirect as redirect:
            url = _next_hop(uri, url, redirect.location)
        except PermissionDenied as refused:
            if url == uri:
                raise
            raise PermissionDenied(
                f"audio.uri {shown(uri)} redirects to {shown(url)}, which is refused: "
                f"{refused.message}"
            ) from None
    raise InvalidAudio(f"audio.uri {shown(uri)} redirects more than {MAX_REDIRECTS} times")


class _Redirect(Exception):
    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


def _get(opener, url: str, uri: str, max_bytes: int, deadline: float, timeout_s: float) -> bytes:
    where = shown(uri)
    try:
        with opener.open(url, timeout=max(0.001, deadline - time.monotonic())) as reply:
            declared = reply.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise InvalidAudio(too_large(where, int(declared), max_bytes))
            blocks = iter(lambda: reply.read(READ_BLOCK_BYTES), b"")
            return read_bounded(blocks, where, max_bytes, deadline, timeout_s)
    except urllib.error.HTTPError as error:
        location = error.headers.get("Location") if error.headers else None
        error.close()
        if error.code in REDIRECT_CODES and location:
            raise _Redirect(location) from None
        if error.code >= 500:
            raise Transient(f"fetching {where} failed: HTTP {error.code} {error.reason}") from None
        raise InvalidAudio(
            f"audio.uri {where} could not be fetched: HTTP {error.code} {error.reason}"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise Transient(f"fetching {where} failed: {reason}") from None


def _next_hop(uri: str, url: str, location: str) -> str:
    """The URL a redirect names; only http(s) may be redirected to (never file://)."""
    target = urljoin(url, location)
    scheme = urlparse(target).scheme.lower()
    if scheme not in REDIRECT_SCHEMES:
        raise PermissionDenied(
            f"audio.uri {shown(uri)} redirects to a {scheme or 'relative'}: uri, which is refused"
        )
    return target


def read_bounded(
    blocks: Iterable[bytes], where: str, max_bytes: int, deadline: float, timeout_s: float
) -> bytes:
    """Job audio read block by block (a response, an object), within the job's size limit and
    the time its fetch may take."""
    parts, total = [], 0
    for block in blocks:
        total += len(block)
        if total > max_bytes:
            raise InvalidAudio(too_large(where, total, max_bytes, at_least=True))
        if time.monotonic() > deadline:
            raise Transient(f"reading {where} took longer than {timeout_s:g} s")
        parts.append(block)
    return b"".join(parts)


def too_large(what: str, size: int, limit: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"audio at {what} is {more}{size} bytes, over the job limit of {limit} bytes"
