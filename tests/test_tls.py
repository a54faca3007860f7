"""TLS and mutual TLS on real servers on 127.0.0.1 (a grpc.aio server as every stt-suite
server is made, and the uvicorn HTTP server), with certificate authorities the tests make:
TLS accepted and plain text refused, a client certificate the client CA signed accepted and
none, or one from another CA, refused; certificate files renewed (rewritten in place, renamed
over, or a Secret's link swapped) serve new connections with no restart; files half renewed
keep the certificate already served; and the settings that come together."""

import asyncio
import http.client
import os
import ssl
from pathlib import Path

import grpc
import pytest
import trustme
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from services.core.health import Lifecycle, State
from services.core.http import HttpServer
from services.core.metrics import ServerMetrics
from services.core.tls import (
    ClientFiles,
    ServerCertificates,
    TlsError,
    channel_credentials,
    grpc_server_credentials,
    http_server_context,
)

CALL_TIMEOUT_S = 5
SERVING = "SERVING"
# The servers run on uvloop (`stt serve`, `stt router`); asyncio's own loop is checked too.
LOOPS = pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])


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


def server_leaf(authority: trustme.CA) -> trustme.LeafCert:
    return authority.issue_cert("localhost", "127.0.0.1")


async def start_grpc(certificates: ServerCertificates):
    lifecycle = Lifecycle([], ServerMetrics("tls-test"))
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(lifecycle.health, server)
    port = server.add_secure_port("127.0.0.1:0", grpc_server_credentials(certificates))
    await server.start()
    await lifecycle.set(State.SERVING)
    return server, port


async def health(port: int, credentials: grpc.ChannelCredentials | None) -> str:
    """SERVING, or the status code of a call that could not be made."""
    options = [("grpc.use_local_subchannel_pool", 1)]  # a new connection each time
    target = f"127.0.0.1:{port}"
    channel = (
        grpc.aio.insecure_channel(target, options=options)
        if credentials is None
        else grpc.aio.secure_channel(target, credentials, options=options)
    )
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def trusting(path: Path, client: tuple[Path, Path] | None = None) -> grpc.ChannelCredentials:
    return channel_credentials(path, *(client or (None, None)))


def test_grpc_tls_serves_tls_only_and_takes_renewed_files(tmp_path):
    first, second = trustme.CA(), trustme.CA()
    cert, key = write_leaf(server_leaf(first), tmp_path / "tls", "server")
    first_ca, second_ca = (
        write_ca(first, tmp_path / "first.pem"),
        write_ca(second, tmp_path / "second.pem"),
    )

    async def scenario():
        server, port = await start_grpc(ServerCertificates(cert, key))
        try:
            assert await health(port, trusting(first_ca)) == SERVING
            assert await health(port, None) == "UNAVAILABLE"  # plain text
            assert await health(port, trusting(second_ca)) == "UNAVAILABLE"
            assert await health(port, channel_credentials(None)) == "UNAVAILABLE"  # system CAs
            renewed = server_leaf(second)
            cert.write_bytes(b"".join(b.bytes() for b in renewed.cert_chain_pems))
            key.write_bytes(renewed.private_key_pem.bytes())  # rewritten in place
            assert await health(port, trusting(second_ca)) == SERVING
            assert await health(port, trusting(first_ca)) == "UNAVAILABLE"
        finally:
            await server.stop(0)

    asyncio.run(scenario())


@LOOPS
def test_grpc_mutual_tls(tmp_path, run):
    servers, clients, stranger = trustme.CA(), trustme.CA(), trustme.CA()
    cert, key = write_leaf(server_leaf(servers), tmp_path, "server")
    client_ca = write_ca(clients, tmp_path / "clients.pem")
    servers_ca = write_ca(servers, tmp_path / "servers.pem")
    signed = write_leaf(clients.issue_cert("router@stt"), tmp_path, "signed")
    foreign = write_leaf(stranger.issue_cert("router@stt"), tmp_path, "foreign")

    async def scenario():
        server, port = await start_grpc(ServerCertificates(cert, key, client_ca))
        try:
            assert await health(port, trusting(servers_ca, signed)) == SERVING
            assert await health(port, trusting(servers_ca)) == "UNAVAILABLE"
            assert await health(port, trusting(servers_ca, foreign)) == "UNAVAILABLE"
            assert await health(port, None) == "UNAVAILABLE"
            # The client CA renewed: the stranger's clients are now the ones let in.
            write_ca(stranger, client_ca)
            assert await health(port, trusting(servers_ca, foreign)) == SERVING
            assert await health(port, trusting(servers_ca, signed)) == "UNAVAILABLE"
        finally:
            await server.stop(0)

    run(scenario())


def test_half_renewed_files_keep_the_certificate_served(tmp_path, caplog):
    first, second = trustme.CA(), trustme.CA()
    cert, key = write_leaf(server_leaf(first), tmp_path, "server")
    first_ca, second_ca = (
        write_ca(first, tmp_path / "first.pem"),
        write_ca(second, tmp_path / "second.pem"),
    )
    renewed = server_leaf(second)

    async def scenario():
        server, port = await start_grpc(ServerCertificates(cert, key))
        try:
            cert.write_bytes(b"".join(b.bytes() for b in renewed.cert_chain_pems))  # key not yet
            assert await health(port, trusting(first_ca)) == SERVING
            assert await health(port, trusting(first_ca)) == SERVING
            key.write_bytes(renewed.private_key_pem.bytes())
            assert await health(port, trusting(second_ca)) == SERVING
        finally:
            await server.stop(0)

    asyncio.run(scenario())
    refusals = [r for r in caplog.records if "cannot be used" in r.getMessage()]
    assert len(refusals) == 1  # once per change, not once per connection
    assert str(cert) in refusals[0].error


def https_status(port: int, context: ssl.SSLContext | None, host: str = "127.0.0.1") -> int:
    connection = (
        http.client.HTTPConnection(host, port, timeout=CALL_TIMEOUT_S)
        if context is None
        else http.client.HTTPSConnection(host, port, timeout=CALL_TIMEOUT_S, context=context)
    )
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    finally:
        connection.close()


def client_context(ca: trustme.CA, leaf: trustme.LeafCert | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if leaf is not None:
        leaf.configure_cert(context)
    return context


async def start_http(certificates: ServerCertificates) -> HttpServer:
    metrics = ServerMetrics("tls-test")
    lifecycle = Lifecycle([], metrics)
    server = HttpServer("127.0.0.1", 0, lifecycle, metrics, tls=http_server_context(certificates))
    await server.start()
    return server


def test_http_tls_and_mutual_tls_with_a_secret_renewed_by_a_link_swap(tmp_path):
    first, second, clients, stranger = trustme.CA(), trustme.CA(), trustme.CA(), trustme.CA()
    # A Kubernetes Secret volume: the files are links through `..data`, swapped on renewal.
    for name, authority, client in (("v1", first, clients), ("v2", second, stranger)):
        write_leaf(server_leaf(authority), tmp_path / name, "tls")
        write_ca(client, tmp_path / name / "ca.crt")
    (tmp_path / "..data").symlink_to("v1")
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).symlink_to(Path("..data") / name)
    signed, foreign = clients.issue_cert("client"), stranger.issue_cert("client")
    certificates = ServerCertificates(
        tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    )

    async def scenario():
        server = await start_http(certificates)
        status = lambda *args: asyncio.to_thread(https_status, server.port, *args)  # noqa: E731
        try:
            assert await status(client_context(first, signed)) == 200
            for refused in (client_context(first), client_context(first, foreign), None):
                with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
                    await status(refused)
            with pytest.raises(ssl.SSLCertVerificationError):
                await status(client_context(second, signed))
            (tmp_path / "..data-new").symlink_to("v2")
            os.replace(tmp_path / "..data-new", tmp_path / "..data")
            assert await status(client_context(second, foreign)) == 200
            with pytest.raises(ssl.SSLCertVerificationError):
                await status(client_context(first, signed))
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await status(client_context(second, signed))
        finally:
            await server.stop()

    asyncio.run(scenario())


@LOOPS
def test_grpc_and_http_share_one_set_of_files(tmp_path, run):
    first, second = trustme.CA(), trustme.CA()
    cert, key = write_leaf(server_leaf(first), tmp_path, "server")
    second_ca = write_ca(second, tmp_path / "second.pem")
    certificates = ServerCertificates(cert, key)

    async def scenario():
        grpc_side, port = await start_grpc(certificates)
        http_side = await start_http(certificates)
        try:
            renewed = write_leaf(server_leaf(second), tmp_path / "new", "server")
            os.replace(renewed[1], key)  # renamed over the old files
            os.replace(renewed[0], cert)
            # The HTTP server sees the change first; gRPC must still be given it.
            assert (
                await asyncio.to_thread(https_status, http_side.port, client_context(second)) == 200
            )
            assert await health(port, trusting(second_ca)) == SERVING
        finally:
            await http_side.stop()
            await grpc_side.stop(0)

    run(scenario())


def test_unusable_files_are_refused_at_start_up_by_name(tmp_path):
    authority = trustme.CA()
    cert, key = write_leaf(server_leaf(authority), tmp_path, "server")
    _, other_key = write_leaf(server_leaf(authority), tmp_path, "other")
    with pytest.raises(TlsError, match=r"missing\.crt"):
        ServerCertificates(tmp_path / "missing.crt", key)
    with pytest.raises(TlsError, match=r"server\.crt"):
        ServerCertificates(cert, other_key)  # the key of another certificate
    (tmp_path / "garbage.pem").write_text("not a certificate")
    with pytest.raises(TlsError, match=r"garbage\.pem"):
        ServerCertificates(cert, key, tmp_path / "garbage.pem")
    with pytest.raises(TlsError, match="go together"):
        channel_credentials(None, cert_file=cert)
    with pytest.raises(TlsError, match=r"missing\.pem"):
        channel_credentials(tmp_path / "missing.pem")


def test_client_files_tell_when_they_change(tmp_path):
    authority = trustme.CA()
    ca = write_ca(authority, tmp_path / "ca.pem")
    files = ClientFiles(ca)
    assert isinstance(files.credentials(), grpc.ChannelCredentials)
    assert not files.changed()
    write_ca(trustme.CA(), tmp_path / "ca.pem")
    assert files.changed()
    files.credentials()
    assert not files.changed()


def test_tls_settings_take_each_server_s_prefix_and_come_together(monkeypatch, tmp_path):
    from services.jobs.worker.settings import WorkerSettings
    from services.router.settings import RouterSettings
    from services.whisper_en.settings import WhisperSettings

    authority = trustme.CA()
    cert, key = write_leaf(server_leaf(authority), tmp_path, "server")
    ca = write_ca(authority, tmp_path / "ca.pem")
    assert WhisperSettings(model="m").tls.certificates() is None
    assert RouterSettings().backend_tls.files() is None
    monkeypatch.setenv("WHISPER_EN_TLS_CERT_FILE", str(cert))
    with pytest.raises(
        ValidationError, match="WHISPER_EN_TLS_CERT_FILE and WHISPER_EN_TLS_KEY_FILE"
    ):
        WhisperSettings(model="m")
    monkeypatch.setenv("WHISPER_EN_TLS_KEY_FILE", str(key))
    monkeypatch.setenv("WHISPER_EN_TLS_CLIENT_CA_FILE", str(ca))
    monkeypatch.setenv("WHISPER_EN_GRPC_PORT", "50099")
    settings = WhisperSettings(model="m")
    assert settings.grpc_port == 50099  # the server's own settings are read as before
    assert settings.tls.certificates().mutual
    monkeypatch.setenv("ROUTER_TLS_CLIENT_CA_FILE", str(ca))
    with pytest.raises(
        ValidationError, match="ROUTER_TLS_CLIENT_CA_FILE needs ROUTER_TLS_CERT_FILE"
    ):
        RouterSettings()
    monkeypatch.setenv("ROUTER_TLS_CLIENT_CA_FILE", "")
    monkeypatch.setenv("ROUTER_BACKEND_TLS_KEY_FILE", str(key))
    with pytest.raises(
        ValidationError, match="ROUTER_BACKEND_TLS_CERT_FILE and ROUTER_BACKEND_TLS_KEY_FILE"
    ):
        RouterSettings()
    monkeypatch.setenv("ROUTER_BACKEND_TLS_CERT_FILE", str(cert))
    with pytest.raises(ValidationError, match="needs ROUTER_BACKEND_TLS_CA_FILE"):
        RouterSettings()
    monkeypatch.setenv("ROUTER_BACKEND_TLS_CA_FILE", str(ca))
    assert isinstance(RouterSettings().backend_tls.files().credentials(), grpc.ChannelCredentials)
    # Flat names given to the constructor reach the groups, as the command line gives them.
    flat = WorkerSettings(target_tls_ca_file=ca, tls_cert_file=cert, tls_key_file=key)
    assert flat.target_tls.ca_file == ca and flat.tls.cert_file == cert
    with pytest.raises(ValidationError, match="WORKER_TARGET_TLS_CERT_FILE needs"):
        WorkerSettings(target_tls_cert_file=cert, target_tls_key_file=key)
