"""The three official clients (google-cloud-speech, nvidia-riva-client, openai), unchanged,
against a router serving TLS with API keys, in front of a real whisper_en: each transcribes
with a key, and is refused without one (UNAUTHENTICATED, OpenAI's 401), with an unknown one,
or naming another tenant (PERMISSION_DENIED, 403); the keys file read again when it changes;
health, reflection and /metrics open to probes and tools; stt.v1 through `stt transcribe` and
`stt check`; and no key in any log line."""

from __future__ import annotations

import http.client
import logging
import time
import urllib.request

import grpc
import openai
import pytest
import riva.client
from google.api_core import exceptions
from google.cloud import speech_v1
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from services import cli
from services.router import keys as keys_module
from tests.conftest import dropin_router_settings
from tests.dropin_support import JFK, paced, pcm16, reference, wer
from tests.security_support import Pki, bearer, keys_file, secure_channel
from tests.support import AUDIO_DIR, clip, request, running_router, transcript

GOOGLE_CONFIG = speech_v1.RecognitionConfig(language_code="en-US")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def keyring(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys"
    return path, keys_file(path, "team-a", "team-b")


@pytest.fixture(scope="module")
def router(dropin_whisper, pki, keyring):
    path, _ = keyring
    settings = dropin_router_settings(dropin_whisper.target, api_keys_file=path, **pki.server_tls())
    with running_router(settings) as router:
        yield router


@pytest.fixture(scope="module")
def google(router, pki):
    channel = secure_channel(router.target, pki.credentials())
    yield speech_v1.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    channel.close()


def joined(response) -> str:
    return " ".join(r.alternatives[0].transcript for r in response.results)


def google_audio() -> speech_v1.RecognitionAudio:
    return speech_v1.RecognitionAudio(content=clip(JFK))


def test_google_s_client_with_a_key(google, keyring, audio_dir):
    _, keys = keyring
    response = google.recognize(
        config=GOOGLE_CONFIG, audio=google_audio(), metadata=bearer(keys["team-a"]), timeout=120
    )
    assert wer(reference(JFK), joined(response)) == 0.0


def test_google_s_client_without_a_key_or_with_another_tenant_s_name(google, keyring, audio_dir):
    _, keys = keyring
    with pytest.raises(exceptions.Unauthenticated, match="needs an API key"):
        google.recognize(config=GOOGLE_CONFIG, audio=google_audio(), timeout=30)
    with pytest.raises(exceptions.Unauthenticated, match="not one this router knows"):
        google.recognize(
            config=GOOGLE_CONFIG, audio=google_audio(), metadata=bearer("stt_guess"), timeout=30
        )
    other = (*bearer(keys["team-a"]), ("x-tenant-id", "team-b"))
    with pytest.raises(exceptions.PermissionDenied, match="names tenant 'team-b'"):
        google.recognize(config=GOOGLE_CONFIG, audio=google_audio(), metadata=other, timeout=30)
    same = (*bearer(keys["team-a"]), ("x-tenant-id", "team-a"))
    google.recognize(config=GOOGLE_CONFIG, audio=google_audio(), metadata=same, timeout=120)


def riva_service(router, pki, key: str | None) -> tuple[riva.client.ASRService, riva.client.Auth]:
    metadata = [["authorization", f"Bearer {key}"]] if key else None
    auth = riva.client.Auth(
        uri=router.target, use_ssl=True, ssl_root_cert=str(pki.ca), metadata_args=metadata
    )
    return riva.client.ASRService(auth), auth


def test_riva_s_client_with_a_key_offline_and_streaming(router, pki, keyring, audio_dir):
    _, keys = keyring
    asr, auth = riva_service(router, pki, keys["team-b"])
    try:
        config = riva.client.RecognitionConfig(language_code="en-US")
        response = asr.offline_recognize(clip(JFK), config)
        assert wer(reference(JFK), joined(response)) == 0.0
        pcm = riva.client.RecognitionConfig(
            encoding=riva.client.AudioEncoding.LINEAR_PCM,
            sample_rate_hertz=16000,
            language_code="en-US",
        )
        streaming = riva.client.StreamingRecognitionConfig(config=pcm, interim_results=False)
        finals = [
            result.alternatives[0].transcript
            for answer in asr.streaming_response_generator(paced(pcm16(JFK), pace_s=0.0), streaming)
            for result in answer.results
            if result.is_final
        ]
        assert "what you can do for your country" in " ".join(finals).lower()
    finally:
        auth.channel.close()


def test_riva_s_client_without_a_key(router, pki, audio_dir):
    asr, auth = riva_service(router, pki, None)
    try:
        config = riva.client.RecognitionConfig(language_code="en-US")
        with pytest.raises(grpc.RpcError) as refused:
            asr.offline_recognize(clip(JFK), config)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        pcm = riva.client.RecognitionConfig(
            encoding=riva.client.AudioEncoding.LINEAR_PCM,
            sample_rate_hertz=16000,
            language_code="en-US",
        )
        streaming = riva.client.StreamingRecognitionConfig(config=pcm)
        with pytest.raises(grpc.RpcError) as refused:
            list(asr.streaming_response_generator(iter([pcm16(JFK)[:3200]]), streaming))
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as refused:
            asr.stub.GetRivaSpeechRecognitionConfig(
                riva.client.proto.riva_asr_pb2.RivaSpeechRecognitionConfigRequest(), timeout=10
            )
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    finally:
        auth.channel.close()


def openai_client(router, pki, key: str, **headers) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"https://127.0.0.1:{router.server.http_port}/v1",
        api_key=key,
        max_retries=0,
        default_headers=headers or None,
        http_client=openai.DefaultHttpxClient(verify=pki.context()),
    )


def test_openai_s_client_with_a_key(router, pki, keyring, audio_dir):
    _, keys = keyring
    with openai_client(router, pki, keys["team-a"]) as client:
        text = client.audio.transcriptions.create(
            file=("jfk.flac", clip(JFK)), model="whisper-1", language="en"
        ).text
        assert wer(reference(JFK), text) == 0.0
        assert "whisper_en" in [model.id for model in client.models.list()]


def test_openai_s_client_is_refused_with_401_in_openai_s_shape(router, pki, keyring, audio_dir):
    _, keys = keyring
    with openai_client(router, pki, "stt_guess") as client:
        with pytest.raises(openai.AuthenticationError) as refused:
            client.audio.transcriptions.create(file=("jfk.flac", clip(JFK)), model="whisper-1")
        assert refused.value.status_code == 401
        body = refused.value.body
        assert body["code"] == "invalid_api_key" and body["type"] == "invalid_request_error"
        assert "stt_guess" not in body["message"]
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
        with pytest.raises(openai.AuthenticationError):
            client.models.retrieve("whisper_en")
    with (
        openai_client(router, pki, keys["team-a"], **{"x-tenant-id": "team-b"}) as client,
        pytest.raises(openai.PermissionDeniedError),
    ):
        client.audio.transcriptions.create(file=("jfk.flac", clip(JFK)), model="whisper-1")


def test_an_upload_without_a_key_is_refused_before_it_is_read(router, pki):
    # 2 MiB announced, 64 bytes sent: the refusal comes without waiting for the rest.
    connection = http.client.HTTPSConnection(
        "127.0.0.1", router.server.http_port, timeout=10, context=pki.context()
    )
    try:
        connection.putrequest("POST", "/v1/audio/transcriptions")
        connection.putheader("content-type", "multipart/form-data; boundary=x")
        connection.putheader("content-length", str(2 << 20))
        connection.endheaders(b"--x\r\n" + b"a" * 59)
        reply = connection.getresponse()
        assert reply.status == 401
    finally:
        connection.close()


def test_health_reflection_and_metrics_stay_open(router, pki):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with secure_channel(router.target, pki.credentials()) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="router"), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        listing = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for answer in listing for s in answer.list_services_response.service}
        assert "stt.v1.Speech" in names
        with pytest.raises(grpc.RpcError) as refused:
            stt_pb2_grpc.SpeechStub(channel).GetServiceInfo(
                stt_pb2.GetServiceInfoRequest(), timeout=10
            )
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    url = f"https://127.0.0.1:{router.server.http_port}/metrics"
    with urllib.request.urlopen(url, context=pki.context(), timeout=10) as metrics:
        assert metrics.status == 200 and b"stt_router_requests_total" in metrics.read()


def test_stt_transcribe_and_check_with_a_key_file(
    router, pki, keyring, tmp_path, capsys, audio_dir
):
    _, keys = keyring
    key_file = tmp_path / "key"
    key_file.write_text(keys["team-b"] + "\n")
    tls = ["--tls-ca", str(pki.ca)]
    path = str(AUDIO_DIR / JFK)
    argv = ["transcribe", path, "--target", router.target, "--language", "en", *tls]
    assert cli.main([*argv, "--api-key-file", str(key_file)]) == 0
    assert "ask not what your country" in capsys.readouterr().out.lower()
    assert cli.main(argv) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    check = ["check", "--target", router.target, "--health-entry", "router", *tls]
    assert cli.main([*check, "--api-key-file", str(key_file)]) == 0
    assert cli.main(check) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def test_the_keys_file_is_read_again_when_it_changes(router, pki, keyring, audio_dir):
    path, keys = keyring
    fresh, line = keys_module.new_key("team-c")

    def code(key: str) -> grpc.StatusCode:
        with secure_channel(router.target, pki.credentials()) as channel:
            try:
                stt_pb2_grpc.SpeechStub(channel).Recognize(
                    request(clip(JFK), language_code="en"), metadata=bearer(key), timeout=120
                )
            except grpc.RpcError as error:
                return error.code()
        return grpc.StatusCode.OK

    assert code(fresh) is grpc.StatusCode.UNAUTHENTICATED
    keys_module.append_line(path, line)
    deadline = time.monotonic() + 10
    while code(fresh) is not grpc.StatusCode.OK:
        assert time.monotonic() < deadline, "the new key was not taken"
        time.sleep(0.3)
    # team-b's key taken out of the file: refused once the file is read again.
    kept = [ln for ln in path.read_text().splitlines() if not ln.startswith("team-b ")]
    path.write_text("\n".join(kept) + "\n")
    deadline = time.monotonic() + 10
    while code(keys["team-b"]) is not grpc.StatusCode.UNAUTHENTICATED:
        assert time.monotonic() < deadline, "the removed key was still taken"
        time.sleep(0.3)
    path.write_text("\n".join(kept) + f"\n{keys_module.new_key('team-b')[1]}\n")


def test_no_key_appears_in_the_logs(router, pki, keyring, caplog, audio_dir):
    _, keys = keyring
    caplog.set_level(logging.DEBUG)
    with secure_channel(router.target, pki.credentials()) as channel:
        stub = stt_pb2_grpc.SpeechStub(channel)
        response = stub.Recognize(
            request(clip(JFK), language_code="en"), metadata=bearer(keys["team-a"]), timeout=120
        )
        assert transcript(response)
        with pytest.raises(grpc.RpcError):
            stub.Recognize(
                request(clip(JFK), language_code="en"),
                metadata=bearer("stt_not-a-key-of-this-router"),
                timeout=30,
            )
    logged = caplog.text + "".join(str(vars(record)) for record in caplog.records)
    assert "request refused" in caplog.text
    assert keys["team-a"] not in logged and "stt_not-a-key-of-this-router" not in logged
