"""Nested settings: a group's variables keep their flat names, values may be given flat, and
the values a settings object was given are the variables another process reads back alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.whisper_en.settings import WhisperSettings


def test_a_group_reads_its_variables_by_their_flat_names(monkeypatch):
    monkeypatch.setenv("WHISPER_EN_TLS_CERT_FILE", "/certs/tls.crt")
    monkeypatch.setenv("WHISPER_EN_TLS_KEY_FILE", "/certs/tls.key")
    settings = WhisperSettings(max_batch_size=4)
    assert settings.tls.cert_file == Path("/certs/tls.crt")
    assert settings.max_batch_size == 4


def test_the_given_values_are_read_back_alike_from_their_variables(monkeypatch, tmp_path):
    given = WhisperSettings(
        max_batch_size=4,
        batch_window_ms=20,
        tls_cert_file=tmp_path / "tls.crt",
        tls_key_file=tmp_path / "tls.key",
    )
    variables = dict(given.given_variables())
    assert variables["WHISPER_EN_TLS_CERT_FILE"] == tmp_path / "tls.crt"
    assert "WHISPER_EN_TLS" not in variables  # a group is told by its fields, not whole
    assert "WHISPER_EN_GRPC_PORT" not in variables  # a default is not told
    for name, value in variables.items():
        monkeypatch.setenv(name, str(value))
    assert WhisperSettings() == given


def test_a_group_given_whole_and_by_its_fields_is_refused(tmp_path):
    whole = WhisperSettings().tls
    with pytest.raises(ValueError, match="given both whole and by its fields"):
        WhisperSettings(tls=whole, tls_cert_file=tmp_path / "tls.crt")
