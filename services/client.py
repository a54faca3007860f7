"""A small synchronous client for stt.v1.Speech, used by `stt transcribe`, `stt check`, tests
and benchmarks: plain text, or TLS with `credentials`; `metadata` carries an API key."""

from __future__ import annotations

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stt.v1 import stt_pb2, stt_pb2_grpc


class RecognizeError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def recognize(
    target: str,
    content: bytes,
    *,
    language: str = "",
    words: bool = False,
    phrases: tuple[str, ...] = (),
    timeout: float = 300.0,
    credentials: grpc.ChannelCredentials | None = None,
    metadata: tuple[tuple[str, str], ...] = (),
) -> stt_pb2.RecognizeResponse:
    config = stt_pb2.RecognitionConfig(
        language_code=language, enable_word_time_offsets=words, enable_word_confidence=words
    )
    if phrases:
        config.speech_contexts.add(phrases=phrases)
    request = stt_pb2.RecognizeRequest(
        config=config, audio=stt_pb2.RecognitionAudio(content=content)
    )
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with _channel(target, credentials, options) as channel:
        try:
            return stt_pb2_grpc.SpeechStub(channel).Recognize(
                request, timeout=timeout, metadata=metadata
            )
        except grpc.RpcError as error:
            raise RecognizeError(error.code().name, error.details() or "") from error


def check(
    target: str,
    health_entry: str = "",
    timeout: float = 10.0,
    credentials: grpc.ChannelCredentials | None = None,
    metadata: tuple[tuple[str, str], ...] = (),
) -> stt_pb2.ServiceInfo:
    """The server's info, once its gRPC health entry says SERVING; RecognizeError otherwise."""
    with _channel(target, credentials) as channel:
        try:
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=health_entry), timeout=timeout
            )
            info = stt_pb2_grpc.SpeechStub(channel).GetServiceInfo(
                stt_pb2.GetServiceInfoRequest(), timeout=timeout, metadata=metadata
            )
        except grpc.RpcError as error:
            raise RecognizeError(error.code().name, error.details() or "") from error
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
    if health.status != health_pb2.HealthCheckResponse.SERVING:
        raise RecognizeError(status, f"health entry {health_entry!r} is {status}")
    return info


def _channel(target: str, credentials: grpc.ChannelCredentials | None, options=()):
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


def to_text(response: stt_pb2.RecognizeResponse, words: bool) -> str:
    lines = []
    for result in response.results:
        best = result.alternatives[0]
        lines.append(best.transcript)
        if len(result.alternatives) > 1:  # ranked phrases: each with its confidence
            lines.extend(f"  {a.confidence:.3f}  {a.transcript}" for a in result.alternatives)
        if words:
            lines.extend(
                f"  {w.start_offset.ToTimedelta().total_seconds():7.2f}"
                f" {w.end_offset.ToTimedelta().total_seconds():7.2f}"
                f"  {w.confidence:.2f}  {w.word}"
                for w in best.words
            )
    return "\n".join(lines)


def to_json(response: stt_pb2.RecognizeResponse | stt_pb2.ServiceInfo) -> str:
    return json_format.MessageToJson(response, indent=2, ensure_ascii=False)
