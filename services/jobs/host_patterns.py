"""Host names as the job URI policy compares them: one spelling per host (lower case, no
trailing dot, an IP literal in its compressed form), `host[:port]` entries and `*.domain`
patterns, each read from a setting with a ValueError that names the bad entry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import ip_address

HostPort = tuple[str, int | None]
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_LABELS = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def normalized_host(host: str) -> str:
    """The one spelling of a host name or IP literal (brackets already removed)."""
    host = host.strip().lower()
    if not host:
        raise ValueError("no host")
    try:
        return ip_address(host).compressed
    except ValueError:
        pass
    name = host.removesuffix(".")
    if not name.isascii() or not _LABELS.match(name):
        raise ValueError(f"{host!r} is not a host name (international names in punycode)")
    return name


def host_port(entry: str) -> HostPort:
    """`host`, `host:port`, `ipv6` or `[ipv6]:port` as (host, port or None)."""
    entry = entry.strip()
    host, port = entry, ""
    if entry.startswith("["):
        inside, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{entry!r} is not host, host:port or [ipv6]:port")
        host, port = inside, rest[1:]
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{entry!r} has no port number from 1 to 65535")
    try:
        return normalized_host(host), int(port) if port else None
    except ValueError as error:
        raise ValueError(f"{entry!r}: {error}") from None


@dataclass(frozen=True)
class HostPattern:
    """An exact host, or `*.domain`: any name ending in `.domain` (not `domain` itself)."""

    host: str
    subdomains: bool

    def matches(self, host: str) -> bool:
        if self.subdomains:
            return host.endswith("." + self.host)
        return host == self.host


def host_pattern(entry: str) -> HostPattern:
    entry = entry.strip()
    subdomains = entry.startswith("*.")
    name = entry[2:] if subdomains else entry.strip("[]")
    try:
        host = normalized_host(name)
    except ValueError as error:
        raise ValueError(f"{entry!r}: {error}") from None
    if subdomains and is_ip(host):
        raise ValueError(f"{entry!r}: `*.` goes before a domain name, not an address")
    return HostPattern(host, subdomains)


def is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True
