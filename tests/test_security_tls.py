"""TLS and mutual TLS on the servers as they run (the core's ServerHost): the router's gRPC and
HTTP ports serve TLS only, and with a client CA only clients it signed; the plain-text health
port answers probes and nothing else; a job worker's HTTP port; the router reaching a real
whisper_en over mutual TLS, and new channels when its client certificate is renewed; and the
command line's TLS flags (`stt check`, `stt transcribe`). Certificates are made by trustme;
every server listens on 127.0.0.1."""

from __future__ import annotations

import http.client
import ssl
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from services import cli
from services.router.settings import RouterSettings
from services.whisper_en.backend import WhisperBackend
from tests.conftest import whisper_settings
from tests.jobs_support import running_worker, worker_settings
from tests.security_support import Pki, secure_channel, write_leaf
from tests.support import clip, request, running, running_router, transcript
from tests.test_router import unused_port

JFK = "en/jfk.flac"
TIMEOUT_S = 10


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def router_settings(pki: Pki, mutual: bool, **more) -> RouterSettings:
    values = dict(
        grpc_port=0,
        http_port=0,
        health_port=0,
        backends={"whisper_en": f"dns:///127.0.0.1:{unused_port()}"},
        routes="en*=whisper_en",
        health_interval_s=0.2,
    )
    return RouterSettings(**{**values, **pki.server_tls(mutual), **more})


def health(target: str, credentials: grpc.ChannelCredentials | None, entry: str = "router") -> str:
    """SERVING, or the code of the call that failed."""
    channel = (
        grpc.insecure_channel(target)
        if credentials is None
        else secure_channel(target, credentials)
    )
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=entry), timeout=TIMEOUT_S
            )
        except grpc.RpcError as error:
            return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def https_get(port: int, path: str, context: ssl.SSLContext | None) -> int:
    connection = (
        http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        if context is None
        else http.client.HTTPSConnection("127.0.0.1", port, timeout=TIMEOUT_S, context=context)
    )
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def refused(port: int, path: str, context: ssl.SSLContext | None) -> bool:
    try:
        https_get(port, path, context)
    except (ssl.SSLError, ConnectionError, http.client.HTTPException):
        return True
    return False


def test_the_router_serves_tls_only_on_both_ports(pki):
    with running_router(router_settings(pki, mutual=False)) as router:
        target = router.target
        assert health(target, pki.credentials()) == "SERVING"
        assert health(target, None) == "UNAVAILABLE"  # plain text
        assert health(target, grpc.ssl_channel_credentials()) == "UNAVAILABLE"  # not our CA
        port = router.server.http_port
        assert https_get(port, "/healthz", pki.context()) == 200
        assert https_get(port, "/metrics", pki.context()) == 200  # no key, no client cert
        assert refused(port, "/healthz", None)
        with pytest.raises(ssl.SSLCertVerificationError):
            https_get(port, "/healthz", ssl.create_default_context())


def test_mutual_tls_lets_in_only_clients_the_client_ca_signed(pki):
    with running_router(router_settings(pki, mutual=True)) as router:
        target = router.target
        assert health(target, pki.credentials(client=True)) == "SERVING"
        assert health(target, pki.credentials()) == "UNAVAILABLE"  # no client certificate
        assert health(target, pki.credentials(stranger=True)) == "UNAVAILABLE"
        assert health(target, None) == "UNAVAILABLE"
        port = router.server.http_port
        assert https_get(port, "/readyz", pki.context(client=True)) == 200
        assert refused(port, "/readyz", pki.context())
        assert refused(port, "/readyz", None)


def test_the_health_port_answers_probes_in_plain_text_and_nothing_else(pki):
    with running_router(router_settings(pki, mutual=True)) as router:
        port = router.server.health_port
        assert port not in (None, router.server.http_port)
        assert https_get(port, "/healthz", None) == 200
        assert https_get(port, "/readyz", None) == 200
        for other in ("/metrics", "/v1/models", "/v1/audio/transcriptions"):
            assert https_get(port, other, None) == 404


def test_a_worker_s_http_port_serves_tls(pki, tmp_path):
    settings = worker_settings(
        f"127.0.0.1:{unused_port()}", data_dir=tmp_path, **pki.server_tls(mutual=True)
    )
    with running_worker(settings) as worker:
        port = worker.server.http_port
        assert https_get(port, "/healthz", pki.context(client=True)) == 200
        assert refused(port, "/healthz", pki.context())
        assert refused(port, "/healthz", None)


@pytest.fixture(scope="module")
def tls_whisper(whisper_model, pki):
    """whisper_en serving mutual TLS: only the router's client certificate gets in."""
    settings = whisper_settings(whisper_model, **pki.server_tls(mutual=True))
    with running("whisper_en", settings, WhisperBackend(settings)) as server:
        assert server.wait_loaded(), "whisper_en failed to load"
        yield server


def backend_tls(pki: Pki, client: bool = True) -> dict:
    values = {"backend_tls_ca_file": pki.ca}
    if client:
        values |= {"backend_tls_cert_file": pki.client_cert, "backend_tls_key_file": pki.client_key}
    return values


def tls_router(pki: Pki, whisper_target: str, client: bool = True):
    return running_router(
        router_settings(
            pki,
            mutual=True,
            backends={"whisper_en": f"dns:///{whisper_target}"},
            **backend_tls(pki, client),
        )
    )


def recognize(target: str, credentials: grpc.ChannelCredentials) -> stt_pb2.RecognizeResponse:
    with secure_channel(target, credentials) as channel:
        return stt_pb2_grpc.SpeechStub(channel).Recognize(
            request(clip(JFK), language_code="en"), timeout=120
        )


def wait_serving(target: str, credentials, entry: str = "", within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while health(target, credentials, entry) != "SERVING":
        assert time.monotonic() < deadline, f"{target} did not serve {entry!r} in time"
        time.sleep(0.2)


def test_the_router_reaches_its_backends_over_mutual_tls(pki, tls_whisper, audio_dir):
    with tls_router(pki, tls_whisper.target) as router:
        wait_serving(router.target, pki.credentials(client=True))
        response = recognize(router.target, pki.credentials(client=True))
        assert "ask not what your country" in transcript(response).lower()
        assert response.service == "whisper_en"
    # Without the router's client certificate the backend lets nothing in.
    with tls_router(pki, tls_whisper.target, client=False) as router:
        time.sleep(1)  # several health checks
        assert not router.server.pool.healthy("whisper_en")
        with pytest.raises(grpc.RpcError) as failed:
            recognize(router.target, pki.credentials(client=True))
        assert failed.value.code() is grpc.StatusCode.UNAVAILABLE


def test_renewed_client_files_give_the_backends_new_channels(pki, tls_whisper, tmp_path):
    own = tmp_path / "router"
    cert, key = write_leaf(pki.clients.issue_cert("router@stt"), own, "client")
    settings = router_settings(
        pki,
        mutual=True,
        backends={"whisper_en": f"dns:///{tls_whisper.target}"},
        backend_tls_ca_file=pki.ca,
        backend_tls_cert_file=cert,
        backend_tls_key_file=key,
    )
    with running_router(settings) as router:
        wait_serving(router.target, pki.credentials(client=True))
        before = router.server.pool["whisper_en"]
        write_leaf(pki.clients.issue_cert("router@stt"), own, "client")  # renewed in place
        deadline = time.monotonic() + 10
        while router.server.pool["whisper_en"] is before:
            assert time.monotonic() < deadline, "no new channels after the files changed"
            time.sleep(0.1)
        assert router.server.pool.healthy("whisper_en"), "the health carried over"
        response = recognize(router.target, pki.credentials(client=True))
        assert "ask not" in transcript(response).lower()


def test_stt_check_and_transcribe_take_tls_flags(pki, tls_whisper, audio_dir, capsys):
    with tls_router(pki, tls_whisper.target) as router:
        wait_serving(router.target, pki.credentials(client=True))
        client = ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert)]
        client += ["--tls-key", str(pki.client_key)]
        assert cli.main(["check", "--target", router.target, *client]) == 0
        assert '"service": "router"' in capsys.readouterr().out
        assert cli.main(["check", "--target", router.target, "--timeout", "3"]) == 1
        assert "UNAVAILABLE" in capsys.readouterr().err
        path = str(audio_dir / JFK)
        argv = ["transcribe", path, "--target", router.target, "--language", "en", *client]
        assert cli.main(argv) == 0
        assert "ask not what your country" in capsys.readouterr().out.lower()
        # A client certificate without its key is refused before any call.
        half = ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert)]
        assert cli.main(["transcribe", path, "--target", router.target, *half]) == 2
        assert "go together" in capsys.readouterr().err
