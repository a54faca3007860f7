"""The command line's security flags and `stt up`'s worker, with no server running: the TLS
flags of every server command reach the settings, files that cannot be used are refused at
start with exit 2, and what `stt up` gives its worker (the file roots, trust in the router's
certificate, a key where the router asks for keys)."""

from __future__ import annotations

import pytest

from services import cli, stack
from services.router.settings import RouterSettings
from tests.security_support import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize("command", [["serve", "whisper_en"], ["router"], ["worker"], ["up"]])
def test_every_server_command_takes_the_tls_flags(command, tmp_path):
    args = cli._parser().parse_args(
        [*command, "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem"]
    )
    assert {k: str(v) for k, v in cli._tls_values(args).items()} == {
        "tls_cert_file": "c.pem",
        "tls_key_file": "k.pem",
        "tls_client_ca_file": "ca.pem",
    }


@pytest.mark.parametrize("command", [["transcribe", "a.wav"], ["check"]])
def test_the_clients_take_tls_and_key_flags(command):
    flags = ["--tls-ca", "ca", "--tls-cert", "c", "--tls-key", "k", "--api-key-file", "key"]
    args = cli._parser().parse_args([*command, "--target", "h:1", *flags])
    assert (str(args.tls_ca), str(args.tls_cert), str(args.api_key_file)) == ("ca", "c", "key")


def test_unusable_certificate_files_stop_a_server_at_start(tmp_path, capsys, pki, monkeypatch):
    monkeypatch.setenv("ROUTER_BACKENDS", "whisper_en=dns:///127.0.0.1:1")
    monkeypatch.setenv("ROUTER_ROUTES", "en=whisper_en")
    missing = ["--tls-cert", str(tmp_path / "none.crt"), "--tls-key", str(pki.key)]
    ports = ["--grpc-port", "0", "--http-port", "0"]
    assert cli.main(["router", *ports, *missing]) == 2
    assert "none.crt" in capsys.readouterr().err
    half = ["--tls-cert", str(pki.cert), "--grpc-port", "0", "--http-port", "0"]
    assert cli.main(["router", *half]) == 2
    assert "ROUTER_TLS_CERT_FILE and ROUTER_TLS_KEY_FILE go together" in capsys.readouterr().err


def test_stt_up_gives_its_worker_the_file_roots_and_the_router_s_certificate(pki, tmp_path):
    plain = RouterSettings()
    assert stack.worker_env(plain, [], environ={}) == {}
    roots = [tmp_path / "a", tmp_path / "b"]
    assert stack.worker_env(plain, roots, environ={}) == {
        "JOBS_URI_FILE_ROOTS": f"{roots[0]},{roots[1]}"
    }
    tls = RouterSettings(**pki.server_tls())
    assert stack.worker_env(tls, [], environ={}) == {"WORKER_TARGET_TLS_CA_FILE": str(pki.cert)}
    mutual = stack.worker_env(RouterSettings(**pki.server_tls(mutual=True)), [], environ={})
    assert mutual == {
        "WORKER_TARGET_TLS_CA_FILE": str(pki.cert),
        "WORKER_TARGET_TLS_CERT_FILE": str(pki.cert),
        "WORKER_TARGET_TLS_KEY_FILE": str(pki.key),
    }
    # What the environment says already is left to it.
    assert stack.worker_env(tls, [], environ={"WORKER_TARGET_TLS_CA_FILE": "own.pem"}) == {}


def test_stt_up_refuses_keys_with_no_key_for_its_worker(tmp_path, monkeypatch, capsys):
    (tmp_path / "keys").write_text("")
    keyed = RouterSettings(api_keys_file=tmp_path / "keys")
    with pytest.raises(ValueError, match="WORKER_API_KEY_FILE"):
        stack.worker_env(keyed, [], environ={})
    assert stack.worker_env(keyed, [], environ={"WORKER_API_KEY_FILE": "k"}) == {}
    monkeypatch.setenv("ROUTER_API_KEYS_FILE", str(tmp_path / "keys"))
    monkeypatch.delenv("WORKER_API_KEY_FILE", raising=False)
    assert cli.main(["up", "--port-offset", "300", "--data-dir", str(tmp_path)]) == 2
    assert "set WORKER_API_KEY_FILE" in capsys.readouterr().err


def test_stt_up_sets_the_file_roots_for_the_router_too():
    args = cli._parser().parse_args(["up", "--file-root", "/a", "--file-root", "/b"])
    assert [str(p) for p in args.file_root] == ["/a", "/b"]
