"""NVIDIA Riva ASR messages to stt.v1 and back, with the message types `nvidia-riva-client`
ships (`riva.client.proto.riva_asr_pb2`).

Every field that changes an answer is either mapped or refused with INVALID_ARGUMENT naming
it. Accepted as they are: `enable_automatic_punctuation` and `verbatim_transcripts` (each
model writes text as it was trained to: Whisper punctuates, the CTC services do not).
Words come bare, as Riva's (the transcript keeps the model's punctuation); boosted words
(one speech context with Riva's score as its boost) bias recognition. Word times are whole
milliseconds, as Riva gives them, and come with each word's confidence.
With `diarization_config` (offline only), each word's `speaker_tag` is its speaker, 1, 2, ...
in the order they first speak.
"""

from __future__ import annotations

from riva.client.proto import riva_asr_pb2 as riva
from riva.client.proto import riva_audio_pb2
from stt.v1 import stt_pb2

from services.core.errors import InvalidConfig
from services.core.stream_convert import require_config
from services.router.dropin.fields import (
    copy_phrases,
    pinned_backend,
    refuse_streamed_speakers,
    speaker_tag,
    unsupported,
)

Encoding = stt_pb2.RecognitionConfig.AudioEncoding
ENCODINGS = {
    riva_audio_pb2.ENCODING_UNSPECIFIED: Encoding.ENCODING_UNSPECIFIED,
    riva_audio_pb2.LINEAR_PCM: Encoding.LINEAR16,
    riva_audio_pb2.FLAC: Encoding.FLAC,
    riva_audio_pb2.MULAW: Encoding.MULAW,
    riva_audio_pb2.OGGOPUS: Encoding.OGG_OPUS,
}


def recognize_request(
    request: riva.RecognizeRequest, backends: list[str]
) -> tuple[stt_pb2.RecognizeRequest, str | None]:
    """An offline request as stt.v1, and the backend it is pinned to (None: routed)."""
    if request.config.HasField("endpointing_config"):
        raise unsupported(
            "config.endpointing_config", "offline audio is cut at pauses by the service"
        )
    config, backend = recognition_config(request.config, backends, "config")
    stt_request = stt_pb2.RecognizeRequest(config=config)
    stt_request.audio.content = request.audio
    return stt_request, backend


def stream_setup(
    first: riva.StreamingRecognizeRequest | None, backends: list[str]
) -> tuple[stt_pb2.StreamingRecognizeRequest, str | None]:
    require_config(first)
    _refuse_runtime_config(first)
    streaming = first.streaming_config
    refuse_streamed_speakers(
        streaming.config.diarization_config.enable_speaker_diarization, "streaming_config.config"
    )
    config, backend = recognition_config(streaming.config, backends, "streaming_config.config")
    stt_streaming = stt_pb2.StreamingRecognitionConfig(
        config=config, interim_results=streaming.interim_results
    )
    if streaming.config.HasField("endpointing_config"):
        pause_ms = _end_of_utterance_ms(streaming.config.endpointing_config)
        stt_streaming.speech_end_timeout.FromMilliseconds(pause_ms)
    return stt_pb2.StreamingRecognizeRequest(streaming_config=stt_streaming), backend


def stream_message(message: riva.StreamingRecognizeRequest) -> stt_pb2.StreamingRecognizeRequest:
    """A later message; a second streaming_config goes on for the service to refuse."""
    if message.WhichOneof("streaming_request") == "streaming_config":
        return stt_pb2.StreamingRecognizeRequest(streaming_config={})
    return stt_pb2.StreamingRecognizeRequest(audio_content=message.audio_content)


def _refuse_runtime_config(first: riva.StreamingRecognizeRequest) -> None:
    if first.runtime_config:
        raise unsupported("runtime_config", "set the stream up in streaming_config")


def _end_of_utterance_ms(endpointing: riva.EndpointingConfig) -> int:
    """Riva's `stop_history` (the silence that ends an utterance) is stt.v1's
    speech_end_timeout; its other thresholds belong to Riva's own endpointer."""
    others = ("start_history", "start_threshold", "stop_threshold")
    for name in (*others, "stop_history_eou", "stop_threshold_eou"):
        if endpointing.HasField(name):
            field = f"streaming_config.config.endpointing_config.{name}"
            raise unsupported(field, "use stop_history")
    if not endpointing.HasField("stop_history"):
        raise InvalidConfig(
            "streaming_config.config.endpointing_config needs stop_history, the pause in ms "
            "that ends an utterance"
        )
    return endpointing.stop_history


def recognition_config(
    config: riva.RecognitionConfig, backends: list[str], field: str
) -> tuple[stt_pb2.RecognitionConfig, str | None]:
    _refuse_unsupported(config, field)
    if config.encoding not in ENCODINGS:
        name = riva_audio_pb2.AudioEncoding.Name(config.encoding)
        accepted = ", ".join(riva_audio_pb2.AudioEncoding.Name(e) for e in ENCODINGS)
        raise unsupported(f"{field}.encoding {name}", f"use one of {accepted}")
    words = config.enable_word_time_offsets
    stt_config = stt_pb2.RecognitionConfig(
        encoding=ENCODINGS[config.encoding],
        sample_rate_hertz=config.sample_rate_hertz,
        audio_channel_count=config.audio_channel_count,
        language_code=config.language_code,
        max_alternatives=config.max_alternatives,
        enable_word_time_offsets=words,
        enable_word_confidence=words,
        profanity_filter=config.profanity_filter,
        bare_words=True,
        enable_separate_recognition_per_channel=config.enable_separate_recognition_per_channel,
    )
    copy_phrases(config.speech_contexts, stt_config, f"{field}.speech_contexts")
    speakers = config.diarization_config
    if speakers.enable_speaker_diarization:
        stt_config.diarization_config.CopyFrom(
            stt_pb2.SpeakerDiarizationConfig(
                enable_speaker_diarization=True, max_speaker_count=speakers.max_speaker_count
            )
        )
    return stt_config, pinned_backend(config.model, backends, f"{field}.model")


def _refuse_unsupported(config: riva.RecognitionConfig, field: str) -> None:
    if config.custom_configuration:
        names = ", ".join(sorted(config.custom_configuration))
        raise unsupported(f"{field}.custom_configuration ({names})", "no custom settings exist")


def recognize_response(
    response: stt_pb2.RecognizeResponse, request_id: str
) -> riva.RecognizeResponse:
    answer = riva.RecognizeResponse()
    answer.id.value = request_id
    for result in response.results:
        answer.results.add(
            alternatives=[_alternative(a, result.language_code) for a in result.alternatives],
            channel_tag=result.channel_tag,
            audio_processed=_seconds(result.result_end_offset),
        )
    return answer


def streaming_response(
    response: stt_pb2.StreamingRecognizeResponse, request_id: str
) -> riva.StreamingRecognizeResponse | None:
    """Riva's answer for a stream response; None for one with no result (Riva has no speech
    events to carry it)."""
    if not response.results:
        return None
    answer = riva.StreamingRecognizeResponse()
    answer.id.value = request_id
    for result in response.results:
        answer.results.add(
            alternatives=[_alternative(a, result.language_code) for a in result.alternatives],
            is_final=result.is_final,
            stability=result.stability,
            channel_tag=result.channel_tag,
            audio_processed=_seconds(result.result_end_offset),
        )
    return answer


def _alternative(
    alternative: stt_pb2.SpeechRecognitionAlternative, language: str
) -> riva.SpeechRecognitionAlternative:
    answer = riva.SpeechRecognitionAlternative(
        transcript=alternative.transcript,
        confidence=alternative.confidence,
        language_code=[language] if language else [],
    )
    for word in alternative.words:
        answer.words.add(
            start_time=word.start_offset.ToMilliseconds(),
            end_time=word.end_offset.ToMilliseconds(),
            word=word.word,
            confidence=word.confidence,
            language_code=language,
            speaker_tag=speaker_tag(word.speaker_label),
        )
    return answer


def _seconds(offset) -> float:
    return offset.ToNanoseconds() / 1e9
