"""The TLS settings, as settings groups each process reads with its own prefix:
`ServerTlsSettings` (`<PREFIX>_TLS_CERT_FILE`, `<PREFIX>_TLS_KEY_FILE`,
`<PREFIX>_TLS_CLIENT_CA_FILE`) in every server's settings, and `ClientTlsSettings` for a
server that calls another: the router's calls to its backends (`BackendTlsSettings`,
`ROUTER_BACKEND_TLS_*`) and the job worker's to the router (`TargetTlsSettings`,
`WORKER_TARGET_TLS_*`). Files that come together are checked together when the settings are
read, and the errors name the variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from services.core.settings_groups import SettingsGroup
from services.core.tls import ClientFiles, ServerCertificates


def _empty_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class ServerTlsSettings(SettingsGroup):
    prefix = "TLS_"

    cert_file: Path | None = Field(
        None,
        description="PEM certificate chain: with it (and the key) the gRPC and HTTP ports serve "
        "TLS only; read again when it changes.",
    )
    key_file: Path | None = Field(
        None, description="PEM private key of the certificate; read again when it changes."
    )
    client_ca_file: Path | None = Field(
        None,
        description="PEM CA certificates: clients must show a certificate one of them signed "
        "(mutual TLS); read again when it changes.",
    )

    _empty = field_validator("cert_file", "key_file", "client_ca_file", mode="before")(
        _empty_is_none
    )

    def check_together(self, env_prefix: str) -> None:
        cert, key = f"{env_prefix}CERT_FILE", f"{env_prefix}KEY_FILE"
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(f"{cert} and {key} go together: set both or neither")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError(f"{env_prefix}CLIENT_CA_FILE needs {cert} and {key}")

    def certificates(self) -> ServerCertificates | None:
        """The server's certificates (raises TlsError when they cannot be used), or None to
        serve plain text."""
        if self.cert_file is None or self.key_file is None:
            return None
        return ServerCertificates(self.cert_file, self.key_file, self.client_ca_file)


class ClientTlsSettings(SettingsGroup):
    """TLS to a server this process calls: its CA, and a client certificate for mutual TLS."""

    ca_file: Path | None = Field(
        None,
        description="PEM CA certificates the server's certificate is verified against; with it "
        "the calls go over TLS.",
    )
    cert_file: Path | None = Field(
        None, description="PEM client certificate shown to the server (mutual TLS)."
    )
    key_file: Path | None = Field(None, description="PEM private key of the client certificate.")

    _empty = field_validator("ca_file", "cert_file", "key_file", mode="before")(_empty_is_none)

    def check_together(self, env_prefix: str) -> None:
        cert, key = f"{env_prefix}CERT_FILE", f"{env_prefix}KEY_FILE"
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(f"{cert} and {key} go together: set both or neither")
        if self.cert_file is not None and self.ca_file is None:
            raise ValueError(f"{cert} needs {env_prefix}CA_FILE")

    def files(self) -> ClientFiles | None:
        """The files of the calls' TLS (read again when they change), or None: plain text."""
        if self.ca_file is None:
            return None
        return ClientFiles(self.ca_file, self.cert_file, self.key_file)


class BackendTlsSettings(ClientTlsSettings):
    """The router's TLS to its backends (and the diarization service)."""

    prefix = "BACKEND_TLS_"


class TargetTlsSettings(ClientTlsSettings):
    """A job worker's TLS to the router (and to its diarization target)."""

    prefix = "TARGET_TLS_"
