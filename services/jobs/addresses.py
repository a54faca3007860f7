"""Which IP addresses a job's http(s) uri may reach: global unicast ones only.

`refusal` is pure (no network): it names why an address is not a global one, or says None.
The tables below list the special-purpose ranges themselves rather than relying only on the
`is_global` of `ipaddress`, whose lists have changed between Python releases; `ipaddress`'s
own flags are checked after them, so whatever it deems non-global is refused too.

An IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`,
NAT64 `64:ff9b::/96`) is judged by the IPv4 address it carries: that is where a packet ends
up. The deprecated IPv4-compatible form `::a.b.c.d` is refused whatever it carries.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

Address = IPv4Address | IPv6Address

_V4_RANGES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (ip_network(net), name)
    for net, name in (
        ("0.0.0.0/8", "unspecified (this network)"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    )
)
_V6_RANGES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (ip_network(net), name)
    for net, name in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignment"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
        ("::/8", "reserved"),
    )
)
_COMPATIBLE = ip_network("::/96")
_NAT64 = ip_network("64:ff9b::/96")


def refusal(address: Address) -> str | None:
    """Why `address` is not a global unicast address (e.g. "loopback", or "IPv4-mapped form
    of 127.0.0.1, loopback"), or None when it is one."""
    if isinstance(address, IPv6Address):
        carried = _carried(address)
        if carried is not None:
            form, inner = carried
            reason = refusal(inner)
            return None if reason is None else f"{form} form of {inner}, {reason}"
        if address in _COMPATIBLE and address not in (IPv6Address("::"), IPv6Address("::1")):
            inner = IPv4Address(int(address) & 0xFFFFFFFF)
            return f"IPv4-compatible (deprecated) form of {inner}"
        ranges = _V6_RANGES
    else:
        ranges = _V4_RANGES
    for network, name in ranges:
        if address in network:
            return name
    return _flagged(address)


def is_global(address: Address) -> bool:
    return refusal(address) is None


def _carried(address: IPv6Address) -> tuple[str, IPv4Address] | None:
    """The IPv4 address an IPv6 one carries, with the name of the form, if it carries one."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address in _NAT64:
        return "NAT64", IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _flagged(address: Address) -> str | None:
    # A backstop for ranges the tables above do not list (future registry entries).
    for flag, name in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(address, flag):
            return name
    return None if address.is_global else "not globally reachable"
