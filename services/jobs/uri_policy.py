"""What a job's `audio.uri` may name: the job URI policy, checked by the router when a job is
submitted and again by the worker that reads it (see `services/jobs/worker/fetch.py`).

- `file://` paths only under one of `JOBS_URI_FILE_ROOTS`, judged after symlinks and `..` are
  resolved; with none set, no `file://` uri is read.
- `http(s)://` only to global addresses (see `services/jobs/addresses.py`): a name must
  resolve to global addresses only. A host listed in `JOBS_URI_ALLOWED_PRIVATE_HOSTS` (`host`
  or `host:port`, as written in the uri) is exempt, e.g. an object store inside the cluster.
- `JOBS_URI_ALLOWED_HOSTS`, when set, is an exact allowlist of the other hosts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlparse

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.core.errors import InvalidArgument, PermissionDenied
from services.core.settings_groups import SettingsGroup
from services.jobs import addresses
from services.jobs.host_patterns import HostPort, host_pattern, host_port, is_ip, normalized_host

# A set, so that another scheme (an object store's) is one more entry and its reader.
SCHEMES = frozenset({"file", "http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
FILE_ROOTS = "JOBS_URI_FILE_ROOTS"
ALLOWED_PRIVATE_HOSTS = "JOBS_URI_ALLOWED_PRIVATE_HOSTS"
ALLOWED_HOSTS = "JOBS_URI_ALLOWED_HOSTS"

Resolver = Callable[..., list]


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return [entry.strip() for entry in value.split(",") if entry.strip()]
    return value


class UriPolicySettings(SettingsGroup):
    """Read alike by the router (at LongRunningRecognize) and the workers (as they fetch)."""

    model_config = SettingsConfigDict(env_prefix="JOBS_URI_", extra="ignore", validate_default=True)

    file_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders a job's file:// uri may name (comma-separated), judged after "
        "symlinks and `..` are resolved; empty: no file:// uri is read.",
    )
    allowed_private_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts (`host` or `host:port`, comma-separated) a job's http(s) uri may "
        "name although they are not global addresses, e.g. an object store in the cluster; "
        "they need no entry in JOBS_URI_ALLOWED_HOSTS.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="When set, the only hosts a job's http(s) uri may name (comma-separated; "
        "`*.example.com` is any name under example.com, not example.com itself).",
    )

    _split = field_validator("file_roots", "allowed_private_hosts", "allowed_hosts", mode="before")(
        _comma_separated
    )

    @field_validator("allowed_private_hosts")
    @classmethod
    def _host_ports(cls, value: list[str]) -> list[str]:
        for entry in value:
            host_port(entry)  # a ValueError names the entry
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, value: list[str]) -> list[str]:
        for entry in value:
            host_pattern(entry)
        return value


@dataclass(frozen=True)
class Target:
    """An http(s) uri's host as the policy judged it: `private_ok` when it is listed among
    the allowed private hosts, so its addresses are not checked."""

    scheme: str
    host: str
    port: int
    private_ok: bool


class UriPolicy:
    def __init__(
        self,
        file_roots: Sequence[str | Path] = (),
        allowed_private_hosts: Sequence[str] = (),
        allowed_hosts: Sequence[str] = (),
        resolver: Resolver = socket.getaddrinfo,
    ):
        self.schemes = SCHEMES
        self._roots = tuple(Path(os.path.realpath(root)) for root in file_roots)
        self._private: frozenset[HostPort] = frozenset(map(host_port, allowed_private_hosts))
        self._patterns = tuple(map(host_pattern, allowed_hosts))
        self._resolve = resolver

    @classmethod
    def from_settings(cls, settings: UriPolicySettings) -> UriPolicy:
        return cls(settings.file_roots, settings.allowed_private_hosts, settings.allowed_hosts)

    def check(self, uri: str) -> None:
        """The whole check of a uri, with its host's name resolved (blocking)."""
        parsed = urlparse(uri)
        if self.scheme(parsed.scheme) == "file":
            self.file_path(uri)
            return
        target = self.target(uri)
        try:
            self.addresses(target)
        except OSError as error:
            raise InvalidArgument(
                f"audio.uri host {target.host!r} cannot be resolved: {error}"
            ) from None

    def scheme(self, scheme: str) -> str:
        if scheme.lower() not in self.schemes:
            raise InvalidArgument(
                f"audio.uri scheme {scheme!r} is not one of {', '.join(sorted(self.schemes))}"
            )
        return scheme.lower()

    def file_path(self, uri: str) -> Path:
        """The real path a file:// uri names, once it is known to lie under a file root."""
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise InvalidArgument(f"audio.uri {_shown(uri)!r} must be file:///absolute/path")
        path = unquote(parsed.path)
        if "\0" in path:
            raise InvalidArgument("audio.uri holds a NUL character")
        real = Path(os.path.realpath(path))
        self.check_real_path(real, _shown(uri))
        return real

    def check_real_path(self, real: str | Path, shown: str) -> None:
        """Refuses a resolved path outside every file root (named as `shown` in the error)."""
        real = Path(real)
        if any(real.is_relative_to(root) for root in self._roots):
            return
        unset = "" if self._roots else " (none is set, so no file:// uri is read)"
        raise PermissionDenied(f"audio.uri {shown} is not under a folder of {FILE_ROOTS}{unset}")

    def target(self, uri: str) -> Target:
        """An http(s) uri's host and port, refused when an allowlist leaves it out; its
        addresses are checked by `addresses` and `check_peer`."""
        parsed = urlparse(uri)
        scheme = self.scheme(parsed.scheme)
        if scheme not in DEFAULT_PORTS:
            raise InvalidArgument(f"audio.uri {_shown(uri)!r} is not an http(s) URL")
        if parsed.username is not None or parsed.password is not None:
            raise InvalidArgument("audio.uri must not hold a user name or password")
        try:
            port = parsed.port or DEFAULT_PORTS[scheme]
            host = normalized_host(parsed.hostname or "")
        except ValueError as error:
            raise InvalidArgument(f"audio.uri {_shown(uri)!r}: {error}") from None
        private_ok = (host, None) in self._private or (host, port) in self._private
        if self._patterns and not private_ok and not any(p.matches(host) for p in self._patterns):
            raise PermissionDenied(f"audio.uri host {host!r} is not in {ALLOWED_HOSTS}")
        return Target(scheme, host, port, private_ok)

    def addresses(self, target: Target) -> list[tuple]:
        """The (family, sockaddr) pairs to connect to for `target`, every one of them checked
        unless the host is an allowed private one. Blocking: it resolves the name, and raises
        OSError (socket.gaierror) when the name does not resolve."""
        found = self._resolve(target.host, target.port, type=socket.SOCK_STREAM)
        pairs = [(family, sockaddr) for family, _, _, _, sockaddr in found]
        if not pairs:
            raise socket.gaierror(socket.EAI_NONAME, f"{target.host} resolves to no address")
        for _, sockaddr in pairs:
            self.check_peer(target, sockaddr[0])
        return pairs

    def check_peer(self, target: Target, address: str) -> None:
        """Refuses an address `target` may not reach (the one resolved, or connected to)."""
        if target.private_ok:
            return
        reason = addresses.refusal(ip_address(address))
        if reason is None:
            return
        subject = "is" if is_ip(target.host) else "resolves to"
        raise PermissionDenied(
            f"audio.uri host {target.host!r} {subject} an address jobs may not reach ({reason});"
            f" the host is not in {ALLOWED_PRIVATE_HOSTS}"
        )


def _shown(uri: str) -> str:
    """The uri without its query and fragment (a pre-signed link's signature)."""
    return urlparse(uri)._replace(query="", fragment="").geturl()[:300]
