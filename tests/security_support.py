"""Helpers for the security tests: certificate authorities and their files (made with trustme),
keys files with fresh keys, and channels and SSL contexts that trust a test authority."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
import trustme

from services.core.tls import channel_credentials
from services.router import keys


def write_leaf(leaf: trustme.LeafCert, folder: Path, name: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return cert, key


def write_ca(authority: trustme.CA, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(authority.cert_pem.bytes())
    return path


@dataclass
class Pki:
    """A servers' CA with one server certificate for 127.0.0.1 and localhost, and a clients'
    CA with one client certificate, as files in `folder`."""

    folder: Path

    def __post_init__(self):
        self.servers, self.clients = trustme.CA(), trustme.CA()
        self.ca = write_ca(self.servers, self.folder / "servers-ca.pem")
        self.client_ca = write_ca(self.clients, self.folder / "clients-ca.pem")
        self.cert, self.key = write_leaf(
            self.servers.issue_cert("localhost", "127.0.0.1"), self.folder, "server"
        )
        self.client_cert, self.client_key = write_leaf(
            self.clients.issue_cert("client@stt"), self.folder, "client"
        )
        stranger = trustme.CA()
        self.stranger_cert, self.stranger_key = write_leaf(
            stranger.issue_cert("client@stt"), self.folder, "stranger"
        )

    def server_tls(self, mutual: bool = False, prefix: str = "tls_") -> dict:
        """A server's TLS settings by their flat names."""
        values = {f"{prefix}cert_file": self.cert, f"{prefix}key_file": self.key}
        if mutual:
            values[f"{prefix}client_ca_file"] = self.client_ca
        return values

    def credentials(self, client: bool = False, stranger: bool = False) -> grpc.ChannelCredentials:
        if stranger:
            return channel_credentials(self.ca, self.stranger_cert, self.stranger_key)
        if client:
            return channel_credentials(self.ca, self.client_cert, self.client_key)
        return channel_credentials(self.ca)

    def context(self, client: bool = False) -> ssl.SSLContext:
        """An HTTPS client's context trusting the servers' CA (with the client certificate)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if client:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def keys_file(path: Path, *tenants: str) -> dict[str, str]:
    """Writes a keys file with a fresh key for each tenant; the keys by tenant."""
    made = {tenant: keys.new_key(tenant) for tenant in tenants}
    path.write_text("".join(line + "\n" for _, line in made.values()), encoding="utf-8")
    return {tenant: key for tenant, (key, _) in made.items()}


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def secure_channel(target: str, credentials: grpc.ChannelCredentials) -> grpc.Channel:
    # A connection of its own each time, so each call shows its own certificate.
    return grpc.secure_channel(target, credentials, [("grpc.use_local_subchannel_pool", 1)])
