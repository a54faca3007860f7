"""Streams through the router, message by message, against small streaming servers on
loopback (no language service streams yet): answers come back in order, a refusal before the
first answer moves the stream to the next backend with what was sent so far, and a stream
that already answered is never retried."""

import grpc
import pytest
from stt.v1 import stt_pb2, stt_pb2_grpc

from services.core.health import Lifecycle
from services.core.host import ServerHost
from services.core.metrics import ServerMetrics
from services.core.names import SPEECH_SERVICE
from services.core.settings import GrpcServerSettings
from services.router.settings import RouterSettings
from tests.support import RunningServer, running_router
from tests.test_whisper_en import metric


class EchoSpeech(stt_pb2_grpc.SpeechServicer):
    """Answers each audio message with its bytes as a final result; `refuse` ends every
    stream at once with that status, `fail_after` ends it after that many answers."""

    def __init__(self, name: str, refuse=None, fail_after: int | None = None):
        self.name, self.refuse, self.fail_after = name, refuse, fail_after

    async def StreamingRecognize(self, request_iterator, context):
        if self.refuse is not None:
            await context.abort(self.refuse, f"{self.name} refuses")
        answered = 0
        async for message in request_iterator:
            if answered == self.fail_after:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.name} broke")
            if message.HasField("audio_content"):
                answered += 1
                yield answer(self.name, message.audio_content.decode())


def answer(name: str, text: str) -> stt_pb2.StreamingRecognizeResponse:
    alternative = stt_pb2.SpeechRecognitionAlternative(transcript=text)
    result = stt_pb2.StreamingRecognitionResult(alternatives=[alternative], is_final=True)
    return stt_pb2.StreamingRecognizeResponse(results=[result], request_id=name)


class EchoServer(ServerHost):
    """Hosts an EchoSpeech the way every stt-suite server is hosted, with health SERVING."""

    background_load = False

    def __init__(self, servicer: EchoSpeech):
        metrics = ServerMetrics(servicer.name)
        settings = GrpcServerSettings(grpc_port=0, http_port=0)
        super().__init__(servicer.name, settings, Lifecycle([SPEECH_SERVICE], metrics), metrics)
        self.servicer = servicer

    max_message_bytes = 1 << 20

    def add_services(self, server: grpc.aio.Server) -> list[str]:
        stt_pb2_grpc.add_SpeechServicer_to_server(self.servicer, server)
        return [SPEECH_SERVICE]


@pytest.fixture(scope="module")
def backends():
    servers = {
        "full": RunningServer(
            lambda: EchoServer(EchoSpeech("full", grpc.StatusCode.RESOURCE_EXHAUSTED))
        ),
        "echo": RunningServer(lambda: EchoServer(EchoSpeech("echo"))),
        "flaky": RunningServer(lambda: EchoServer(EchoSpeech("flaky", fail_after=1))),
        "invalid": RunningServer(
            lambda: EchoServer(EchoSpeech("invalid", grpc.StatusCode.INVALID_ARGUMENT))
        ),
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def router(backends):
    settings = RouterSettings(
        grpc_port=0,
        http_port=0,
        backends={name: f"dns:///{server.target}" for name, server in backends.items()},
        routes="en=full,echo;fr=flaky,echo;de=invalid,echo",
        tries_per_backend=1,
    )
    with running_router(settings) as server:
        yield server


def stream(language: str, *chunks: bytes):
    config = stt_pb2.RecognitionConfig(language_code=language)
    yield stt_pb2.StreamingRecognizeRequest(
        streaming_config=stt_pb2.StreamingRecognitionConfig(config=config)
    )
    for chunk in chunks:
        yield stt_pb2.StreamingRecognizeRequest(audio_content=chunk)


def texts(responses) -> list[tuple[str, str]]:
    return [(r.request_id, r.results[0].alternatives[0].transcript) for r in responses]


def test_a_refused_stream_moves_to_the_next_backend_with_every_message(router):
    failovers = metric(router, "stt_router_failovers_total", backend="full")
    responses = router.stub.StreamingRecognize(stream("en", b"one", b"two", b"three"), timeout=10)
    assert texts(responses) == [("echo", "one"), ("echo", "two"), ("echo", "three")]
    assert metric(router, "stt_router_failovers_total", backend="full") == failovers + 1


def test_a_stream_that_answered_is_never_retried(router):
    received = []
    with pytest.raises(grpc.RpcError) as broken:
        for response in router.stub.StreamingRecognize(stream("fr", b"a", b"b"), timeout=10):
            received.append(response)
    assert texts(received) == [("flaky", "a")]
    assert broken.value.code() is grpc.StatusCode.UNAVAILABLE
    assert broken.value.details() == "flaky broke"


def test_a_streams_invalid_argument_is_the_clients_answer(router):
    with pytest.raises(grpc.RpcError) as refused:
        list(router.stub.StreamingRecognize(stream("de", b"x"), timeout=10))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "invalid refuses"
