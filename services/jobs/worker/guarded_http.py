"""An HTTP(S) opener that connects only where the job URI policy allows.

A connection resolves its host once, checks every address found, connects to a checked one,
and checks the socket's peer address again: a name that resolves elsewhere a moment later (DNS
rebinding) cannot move the connection. The request keeps the uri's own host in its Host header,
and TLS sends it as the server name and verifies the certificate against it.

The opener follows no redirect itself (a 3xx is an `HTTPError`; `services/jobs/fetch.py`
checks each one and opens the next hop) and uses no proxy, which would make the connection to
the proxy's address and leave the policy nothing to check.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.request
from functools import partial
from ipaddress import ip_address

from services.core.errors import PermissionDenied
from services.jobs.host_patterns import normalized_host
from services.jobs.uri_policy import Target, UriPolicy


class _Guard:
    """Opens the socket of one request: to `target`'s checked addresses, or, with no policy,
    to whatever the name resolves to."""

    def __init__(self, policy: UriPolicy | None, target: Target | None):
        self._policy = policy
        self._target = target

    def socket(self, host: str, port: int, timeout: float | None) -> socket.socket:
        if self._policy is None or self._target is None:
            return socket.create_connection((host, port), timeout)
        target = self._target
        if (normalized_host(host), port) != (target.host, target.port):
            raise PermissionDenied(f"the connection to {host}:{port} is not the one checked")
        error: OSError | None = None
        for family, sockaddr in self._policy.addresses(target):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
                peer = sock.getpeername()[0]
                if ip_address(peer) != ip_address(sockaddr[0]):
                    raise PermissionDenied(f"the connection to {host} reached another address")
                self._policy.check_peer(target, peer)
                return sock
            except OSError as failed:
                sock.close()
                error = failed
            except BaseException:
                sock.close()
                raise
        raise error or OSError(f"{host} resolves to no address")


class GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, guard: _Guard, **kwargs):
        super().__init__(*args, **kwargs)
        self._guard = guard

    def connect(self) -> None:
        self.sock = self._guard.socket(self.host, self.port, self.timeout)


class GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, guard: _Guard, tls: ssl.SSLContext, **kwargs):
        super().__init__(*args, context=tls, **kwargs)
        self._guard = guard
        self._tls = tls

    def connect(self) -> None:
        sock = self._guard.socket(self.host, self.port, self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: UriPolicy | None):
        super().__init__()
        self._policy = policy

    def http_open(self, req: urllib.request.Request):
        guard = _guard(self._policy, req)
        return self.do_open(partial(GuardedHTTPConnection, guard=guard), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: UriPolicy | None, tls: ssl.SSLContext):
        super().__init__(context=tls)
        self._policy = policy
        self._tls = tls

    def https_open(self, req: urllib.request.Request):
        guard = _guard(self._policy, req)
        return self.do_open(partial(GuardedHTTPSConnection, guard=guard, tls=self._tls), req)


def _guard(policy: UriPolicy | None, req: urllib.request.Request) -> _Guard:
    # The target is judged from the whole URL, before any connection is made.
    return _Guard(policy, policy.target(req.full_url) if policy is not None else None)


def opener(
    policy: UriPolicy | None, tls: ssl.SSLContext | None = None
) -> urllib.request.OpenerDirector:
    """An opener for http and https only, its connections held to `policy` (None: unchecked),
    verifying servers with `tls` (default: the system's certificate authorities)."""
    director = urllib.request.OpenerDirector()
    for handler in (
        _HTTPHandler(policy),
        _HTTPSHandler(policy, tls or ssl.create_default_context()),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),
    ):
        director.add_handler(handler)
    return director
