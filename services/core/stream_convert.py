"""Translation between StreamingRecognize messages and the stream session's plain events."""

from __future__ import annotations

from stt.v1 import stt_pb2

from services.core import streaming as events
from services.core.audio import AudioSpec
from services.core.backend import DecodeOptions, Segment
from services.core.convert import audio_spec, decode_options, duration, result_message
from services.core.errors import InvalidConfig
from services.core.text_form import text_form

MIN_SPEECH_END_MS, MAX_SPEECH_END_MS = 64, 10_000


def require_config(first) -> None:
    """The first-message rule of every streaming API served (stt.v1, Google, Riva: their
    messages share the `streaming_request` oneof): the configuration comes first, alone."""
    if first is None or first.WhichOneof("streaming_request") != "streaming_config":
        raise InvalidConfig(
            "the first message of a stream must carry streaming_config; audio_content follows"
        )


def require_audio(message) -> None:
    """Every message after the first carries audio."""
    if message.WhichOneof("streaming_request") != "audio_content":
        raise InvalidConfig("streaming_config may only be sent once, in the first message")


def to_stream_setup(
    first: stt_pb2.StreamingRecognizeRequest, served: tuple[str, ...], service: str
) -> tuple[stt_pb2.StreamingRecognitionConfig, AudioSpec, DecodeOptions]:
    """Reads the stream's first message, which must carry its configuration."""
    require_config(first)
    streaming = first.streaming_config
    config = streaming.config
    if streaming.HasField("speech_end_timeout"):
        pause_ms = streaming.speech_end_timeout.ToMilliseconds()
        if not MIN_SPEECH_END_MS <= pause_ms <= MAX_SPEECH_END_MS:
            raise InvalidConfig(
                f"streaming_config.speech_end_timeout must be {MIN_SPEECH_END_MS} ms to "
                f"{MAX_SPEECH_END_MS} ms, got {pause_ms} ms"
            )
    refuse_in_streams(config, "streaming_config.config")
    return streaming, audio_spec(config), decode_options(config, served, service)


def refuse_in_streams(config, field: str) -> None:
    """What a stream cannot do: each channel on its own (its audio comes mixed as it
    arrives), and a language chosen among several (it is set before any audio comes)."""
    if config.enable_separate_recognition_per_channel:
        raise InvalidConfig(
            f"{field}.enable_separate_recognition_per_channel is not supported in streams: "
            "send the audio to Recognize (or LongRunningRecognize) to recognise each channel"
        )
    if config.alternative_language_codes:
        raise InvalidConfig(
            f"{field}.alternative_language_codes is not supported in streams: give one "
            "language_code, or none to have the language detected"
        )


Response = stt_pb2.StreamingRecognizeResponse


def event_response(event, streaming: stt_pb2.StreamingRecognitionConfig) -> Response | None:
    """The response for a stream event, or None when the client did not ask for it."""
    if isinstance(event, events.Final):
        return _final_response(event, streaming.config)
    if isinstance(event, events.Interim):
        text = text_form(streaming.config, event.language).transcript(event.text)
        result = stt_pb2.StreamingRecognitionResult(
            alternatives=[stt_pb2.SpeechRecognitionAlternative(transcript=text)],
            is_final=False,
            stability=event.stability,
            result_start_offset=duration(event.start_s),
            result_end_offset=duration(event.end_s),
            language_code=event.language,
        )
        return Response(results=[result])
    if isinstance(event, events.EndOfSingleUtterance):
        return Response(speech_event_type=Response.END_OF_SINGLE_UTTERANCE)
    if not streaming.enable_voice_activity_events:
        return None
    if isinstance(event, events.SpeechBegan):
        kind = Response.SPEECH_ACTIVITY_BEGIN
    else:
        kind = Response.SPEECH_ACTIVITY_END
    return Response(speech_event_type=kind, speech_event_offset=duration(event.offset_s))


def _final_response(event, config: stt_pb2.RecognitionConfig) -> Response | None:
    segments = event.segments
    text = " ".join(s.text.strip() for s in segments).strip()
    if not text:
        return None  # the VAD heard something the model did not take for speech
    merged = Segment(
        text,
        segments[0].start,
        segments[-1].end,
        _mean_confidence(segments),
        tuple(w for s in segments for w in s.words),
    )
    best = result_message(merged, event.language, config).alternatives[0]
    result = stt_pb2.StreamingRecognitionResult(
        alternatives=[best],
        is_final=True,
        result_start_offset=duration(event.start_s),
        result_end_offset=duration(event.end_s),
        language_code=event.language,
    )
    return Response(results=[result])


def _mean_confidence(segments) -> float:
    weights = [max(s.end - s.start, 1e-3) for s in segments]
    return sum(s.confidence * w for s, w in zip(segments, weights, strict=True)) / sum(weights)
