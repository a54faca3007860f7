"""TLS for every server and client: the gRPC port's credentials, the HTTP port's
`ssl.SSLContext`, and the credentials of a gRPC client (the router's backends, the CLI).

A server's certificate, key and client CA are files (a Kubernetes Secret, renewed by
cert-manager) read again when one of them changes, with no restart: each new connection first
looks at the files (a `stat` each) and, when they changed, loads them, checks that the key
fits the certificate, and serves them from then on. Files that do not load (a renewal half
written) are logged once and the certificates already loaded are kept. Connections already
open keep the certificate they began with.

With a client CA, a client must show a certificate that CA signed (mutual TLS).
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

log = logging.getLogger("stt.tls")


class TlsError(ValueError):
    """Certificate files that cannot be used; the message names them."""


def _signature(paths: tuple[Path, ...]) -> tuple:
    # stat follows links: a Secret renewed by swapping a link shows a new inode.
    stats = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            stats.append(None)
            continue
        stats.append((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(stats)


@dataclass(frozen=True)
class Loaded:
    """One consistent reading of a server's files: their bytes, and a context made of them."""

    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes | None
    context: ssl.SSLContext


class ServerCertificates:
    """A server's certificate chain and key files, and optionally the client CA, as they are
    now. Made at start-up, it raises `TlsError` when the files cannot be used."""

    def __init__(self, cert_file: Path, key_file: Path, client_ca_file: Path | None = None):
        self.cert_file, self.key_file, self.client_ca_file = cert_file, key_file, client_ca_file
        self._paths = tuple(p for p in (cert_file, key_file, client_ca_file) if p is not None)
        self._lock = threading.Lock()
        self._seen = _signature(self._paths)
        self.current = self._load()

    @property
    def mutual(self) -> bool:
        return self.client_ca_file is not None

    def refresh(self) -> Loaded | None:
        """Loads the files again when they changed since last looked at (into `current`);
        returns what was loaded, else None."""
        with self._lock:
            now = _signature(self._paths)
            if now == self._seen:
                return None
            self._seen = now
            try:
                loaded = self._load()
            except TlsError as error:
                log.error(
                    "certificate files changed but cannot be used; the previous ones are kept",
                    extra={"error": str(error)},
                )
                return None
            if _signature(self._paths) != now:
                self._seen = None  # changed as it was read: read it again next time
                return None
            self.current = loaded
            log.info("certificate files loaded again", extra={"cert_file": str(self.cert_file)})
            return loaded

    def _load(self) -> Loaded:
        names = ", ".join(map(str, self._paths))
        try:
            cert_pem, key_pem = self.cert_file.read_bytes(), self.key_file.read_bytes()
            ca_pem = self.client_ca_file.read_bytes() if self.client_ca_file else None
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self.cert_file, self.key_file)
            if ca_pem is not None:
                context.load_verify_locations(cadata=ca_pem.decode("ascii"))
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError, UnicodeDecodeError) as error:
            raise TlsError(f"TLS files {names} cannot be used: {error}") from None
        return Loaded(cert_pem, key_pem, ca_pem, context)


def grpc_server_credentials(certificates: ServerCertificates) -> grpc.ServerCredentials:
    """Credentials for `add_secure_port`: TLS only, mutual with a client CA, and the files'
    newest content for each new connection."""

    def configuration(loaded: Loaded):
        return grpc.ssl_server_certificate_configuration(
            [(loaded.key_pem, loaded.cert_pem)], root_certificates=loaded.client_ca_pem
        )

    given = [certificates.current]

    def fetch():
        # Called by gRPC before each handshake, on one of its own threads. The HTTP server
        # may share `certificates` and be the one that saw the change: compare with what
        # gRPC was given, not with what refresh returned.
        certificates.refresh()
        if certificates.current is given[0]:
            return None
        given[0] = certificates.current
        return configuration(given[0])

    return grpc.dynamic_ssl_server_credentials(
        configuration(given[0]),
        fetch,
        require_client_authentication=certificates.mutual,
    )


def http_server_context(certificates: ServerCertificates) -> ssl.SSLContext:
    """The context the HTTP server listens with. Each handshake starts on it and moves to the
    context of the files' newest content (SSLObject.context, set in the SNI callback, which
    OpenSSL calls for every ClientHello, with or without a server name)."""
    front = certificates.current.context

    def newest(connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext):
        certificates.refresh()
        if certificates.current.context is not front:
            connection.context = certificates.current.context

    front.sni_callback = newest
    return front


def channel_credentials(
    ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None
) -> grpc.ChannelCredentials:
    """A gRPC client's TLS: servers verified against `ca_file` (None: the system's
    authorities), and a client certificate for mutual TLS when `cert_file` and `key_file` are
    given. Read once: a client whose files change makes new credentials (see `ClientFiles`)."""
    if (cert_file is None) != (key_file is None):
        raise TlsError("a client certificate and its key go together: give both or neither")
    try:
        return grpc.ssl_channel_credentials(
            root_certificates=ca_file.read_bytes() if ca_file else None,
            private_key=key_file.read_bytes() if key_file else None,
            certificate_chain=cert_file.read_bytes() if cert_file else None,
        )
    except OSError as error:
        raise TlsError(f"TLS file cannot be read: {error}") from None


class ClientFiles:
    """A long-lived client's CA and certificate files (the router's to its backends): its
    credentials, and whether the files changed since they were made, for the client to make
    new channels with new credentials."""

    def __init__(self, ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None):
        self._files = (ca_file, cert_file, key_file)
        self._paths = tuple(p for p in self._files if p is not None)
        self._seen = _signature(self._paths)

    def credentials(self) -> grpc.ChannelCredentials:
        seen = _signature(self._paths)
        made = channel_credentials(*self._files)
        self._seen = seen
        return made

    def changed(self) -> bool:
        return _signature(self._paths) != self._seen
