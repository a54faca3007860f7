"""The TLS settings, as mixins for a server's settings class, so that each reads them with
its own prefix: `TlsSettings` (`<PREFIX>_TLS_CERT_FILE`, `<PREFIX>_TLS_KEY_FILE`,
`<PREFIX>_TLS_CLIENT_CA_FILE`) for any server, and `BackendTlsSettings`
(`ROUTER_BACKEND_TLS_CA_FILE`, `..._CERT_FILE`, `..._KEY_FILE`) for the router's calls to
its backends. Files that come together are checked together when the settings are read."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.core.tls import ClientFiles, ServerCertificates


def _empty_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class TlsSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate chain: with it (and tls_key_file) the gRPC and HTTP ports "
        "serve TLS only; read again when it changes.",
    )
    tls_key_file: Path | None = Field(
        None, description="PEM private key of tls_cert_file; read again when it changes."
    )
    tls_client_ca_file: Path | None = Field(
        None,
        description="PEM CA certificates: clients must show a certificate one of them signed "
        "(mutual TLS); read again when it changes.",
    )

    _empty = field_validator("tls_cert_file", "tls_key_file", "tls_client_ca_file", mode="before")(
        _empty_is_none
    )

    @model_validator(mode="after")
    def _tls_files_together(self) -> TlsSettings:
        prefix = str(self.model_config.get("env_prefix", "")).upper()
        cert, key = f"{prefix}TLS_CERT_FILE", f"{prefix}TLS_KEY_FILE"
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(f"{cert} and {key} go together: set both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError(f"{prefix}TLS_CLIENT_CA_FILE needs {cert} and {key}")
        return self

    def server_certificates(self) -> ServerCertificates | None:
        """The server's certificates (raises TlsError when they cannot be used), or None to
        serve plain text."""
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        return ServerCertificates(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)


class BackendTlsSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    backend_tls_ca_file: Path | None = Field(
        None,
        description="PEM CA certificates the backends' certificates are verified against; "
        "with it the router calls its backends over TLS.",
    )
    backend_tls_cert_file: Path | None = Field(
        None, description="PEM client certificate the router shows its backends (mutual TLS)."
    )
    backend_tls_key_file: Path | None = Field(
        None, description="PEM private key of backend_tls_cert_file."
    )

    _empty = field_validator(
        "backend_tls_ca_file", "backend_tls_cert_file", "backend_tls_key_file", mode="before"
    )(_empty_is_none)

    @model_validator(mode="after")
    def _backend_tls_files_together(self) -> BackendTlsSettings:
        prefix = str(self.model_config.get("env_prefix", "")).upper()
        cert, key = f"{prefix}BACKEND_TLS_CERT_FILE", f"{prefix}BACKEND_TLS_KEY_FILE"
        if (self.backend_tls_cert_file is None) != (self.backend_tls_key_file is None):
            raise ValueError(f"{cert} and {key} go together: set both or neither")
        if self.backend_tls_cert_file is not None and self.backend_tls_ca_file is None:
            raise ValueError(f"{cert} needs {prefix}BACKEND_TLS_CA_FILE")
        return self

    def backend_tls(self) -> ClientFiles | None:
        """The files of the router's TLS to its backends, or None for plain text."""
        if self.backend_tls_ca_file is None:
            return None
        return ClientFiles(
            self.backend_tls_ca_file, self.backend_tls_cert_file, self.backend_tls_key_file
        )
