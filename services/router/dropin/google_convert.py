"""Google Cloud Speech v1 messages to stt.v1 and back, with the message types that
`google-cloud-speech` ships (proto-plus classes; `.pb()` is the protobuf class under each).

Every field that changes an answer is either mapped or refused with INVALID_ARGUMENT naming
it. Accepted as hints that change nothing here: `metadata` (a description of the audio),
`use_enhanced` (Google's own falls back to the standard model when there is no enhanced one),
and `enable_automatic_punctuation` (each model punctuates as it was trained to: Whisper does,
the CTC services do not). Every Google model name is routed by language. Words come bare, as
Google's (`Bridge`, not `Bridge?`); the transcript keeps what the model wrote. Speech
contexts' class tokens (`$TIME`) name Google's own classes and are left out.
"""

from __future__ import annotations

from google.cloud.speech_v1.types import cloud_speech
from stt.v1 import stt_pb2

from services.core.stream_convert import require_config
from services.router.dropin.fields import (
    copy_phrases,
    pinned_backend,
    refuse_streamed_speakers,
    speaker_tag,
    unsupported,
)

RecognizeRequest = cloud_speech.RecognizeRequest.pb()
RecognizeResponse = cloud_speech.RecognizeResponse.pb()
StreamingRecognizeRequest = cloud_speech.StreamingRecognizeRequest.pb()
StreamingRecognizeResponse = cloud_speech.StreamingRecognizeResponse.pb()
GoogleConfig = cloud_speech.RecognitionConfig.pb()
GoogleResult = cloud_speech.SpeechRecognitionResult.pb()
GoogleStreamingResult = cloud_speech.StreamingRecognitionResult.pb()
GoogleAlternative = cloud_speech.SpeechRecognitionAlternative.pb()

# The encodings stt.v1 reads, by the name both APIs give them (their numbers agree too).
ENCODINGS = ("ENCODING_UNSPECIFIED", "LINEAR16", "FLAC", "MULAW", "OGG_OPUS", "MP3", "WEBM_OPUS")
# Google's v1 model names: each is served by the model routed for the language (the
# answer's trailing metadata says which service and model served it).
ROUTED_MODELS = (
    "",
    "default",
    "latest_long",
    "latest_short",
    "command_and_search",
    "phone_call",
    "video",
    "medical_conversation",
    "medical_dictation",
)


def recognize_request(request, backends: list[str]) -> tuple[stt_pb2.RecognizeRequest, str | None]:
    """A Recognize request as stt.v1, and the backend it is pinned to (None: routed by
    language)."""
    config, backend = recognition_config(request.config, backends, "config")
    stt_request = stt_pb2.RecognizeRequest(config=config)
    source = request.audio.WhichOneof("audio_source")
    if source == "uri":
        raise unsupported(
            "audio.uri",
            "recognize takes the audio bytes in audio.content; long_running_recognize"
            " also reads a gs:// or s3:// object, a file:// path or an http(s):// URL",
        )
    if source == "content":
        stt_request.audio.content = request.audio.content
    return stt_request, backend


def stream_setup(
    first, backends: list[str]
) -> tuple[stt_pb2.StreamingRecognizeRequest, str | None]:
    """The stream's first message (its streaming_config) as stt.v1, and its pinned backend."""
    require_config(first)
    streaming = first.streaming_config
    refuse_streamed_speakers(
        streaming.config.diarization_config.enable_speaker_diarization, "streaming_config.config"
    )
    config, backend = recognition_config(streaming.config, backends, "streaming_config.config")
    stt_streaming = stt_pb2.StreamingRecognitionConfig(
        config=config,
        single_utterance=streaming.single_utterance,
        interim_results=streaming.interim_results,
        enable_voice_activity_events=streaming.enable_voice_activity_events,
    )
    timeouts = streaming.voice_activity_timeout
    if timeouts.HasField("speech_start_timeout"):
        raise unsupported(
            "streaming_config.voice_activity_timeout.speech_start_timeout",
            "a stream waits for speech as long as it is open",
        )
    if timeouts.HasField("speech_end_timeout"):
        stt_streaming.speech_end_timeout.CopyFrom(timeouts.speech_end_timeout)
    return stt_pb2.StreamingRecognizeRequest(streaming_config=stt_streaming), backend


def stream_message(message) -> stt_pb2.StreamingRecognizeRequest:
    """A later message of the stream; a second streaming_config goes on as one, for the
    service to refuse as it refuses any stream that sends two."""
    if message.WhichOneof("streaming_request") == "streaming_config":
        return stt_pb2.StreamingRecognizeRequest(streaming_config={})
    return stt_pb2.StreamingRecognizeRequest(audio_content=message.audio_content)


def recognition_config(
    config, backends: list[str], field: str
) -> tuple[stt_pb2.RecognitionConfig, str | None]:
    _refuse_unsupported(config, field)
    encoding = GoogleConfig.AudioEncoding.Name(config.encoding)
    if encoding not in ENCODINGS:
        raise unsupported(f"{field}.encoding {encoding}", f"use one of {', '.join(ENCODINGS)}")
    stt_config = stt_pb2.RecognitionConfig(
        encoding=stt_pb2.RecognitionConfig.AudioEncoding.Value(encoding),
        sample_rate_hertz=config.sample_rate_hertz,
        audio_channel_count=config.audio_channel_count,
        language_code=config.language_code,
        max_alternatives=config.max_alternatives,
        enable_word_time_offsets=config.enable_word_time_offsets,
        enable_word_confidence=config.enable_word_confidence,
        profanity_filter=config.profanity_filter,
        bare_words=True,
        enable_separate_recognition_per_channel=config.enable_separate_recognition_per_channel,
        alternative_language_codes=list(config.alternative_language_codes),
    )
    copy_phrases(config.speech_contexts, stt_config, f"{field}.speech_contexts")
    speakers = config.diarization_config
    if speakers.enable_speaker_diarization:
        stt_config.diarization_config.CopyFrom(
            stt_pb2.SpeakerDiarizationConfig(
                enable_speaker_diarization=True,
                min_speaker_count=speakers.min_speaker_count,
                max_speaker_count=speakers.max_speaker_count,
            )
        )
    backend = pinned_backend(config.model, backends, f"{field}.model", ROUTED_MODELS)
    return stt_config, backend


def _refuse_unsupported(config, field: str) -> None:
    if config.HasField("adaptation"):
        raise unsupported(f"{field}.adaptation", "use speech_contexts phrases")
    if config.HasField("transcript_normalization"):
        raise unsupported(f"{field}.transcript_normalization", "transcripts come as recognised")
    for name in ("enable_spoken_punctuation", "enable_spoken_emojis"):
        if getattr(config, name).value:
            raise unsupported(f"{field}.{name}", "spoken punctuation is transcribed as words")


def recognize_response(response: stt_pb2.RecognizeResponse):
    return RecognizeResponse(
        results=google_results(response.results), total_billed_time=response.total_billed_time
    )


def google_results(results) -> list:
    """stt.v1 results as Google's. With speakers, as Google answers: a last result holds every
    word of the top alternatives with its speaker, and no transcript; the results before it
    are stt.v1's, one speaker each, their words labelled too."""
    answer = [
        GoogleResult(
            alternatives=[_alternative(a) for a in result.alternatives],
            channel_tag=result.channel_tag,
            result_end_time=result.result_end_offset,
            language_code=result.language_code,
        )
        for result in results
    ]
    labelled = [w for r in answer if r.alternatives for w in r.alternatives[0].words]
    if any(word.speaker_label for word in labelled):
        last = answer[-1]
        answer.append(
            GoogleResult(
                alternatives=[GoogleAlternative(words=labelled)],
                channel_tag=last.channel_tag,
                result_end_time=last.result_end_time,
                language_code=last.language_code,
            )
        )
    return answer


def streaming_response(response: stt_pb2.StreamingRecognizeResponse):
    event = stt_pb2.StreamingRecognizeResponse.SpeechEventType.Name(response.speech_event_type)
    answer = StreamingRecognizeResponse(
        speech_event_type=StreamingRecognizeResponse.SpeechEventType.Value(event)
    )
    if response.HasField("speech_event_offset"):
        answer.speech_event_time.CopyFrom(response.speech_event_offset)
    for result in response.results:
        answer.results.append(
            GoogleStreamingResult(
                alternatives=[_alternative(a) for a in result.alternatives],
                is_final=result.is_final,
                stability=result.stability,
                result_end_time=result.result_end_offset,
                channel_tag=result.channel_tag,
                language_code=result.language_code,
            )
        )
    return answer


def _alternative(alternative: stt_pb2.SpeechRecognitionAlternative):
    answer = GoogleAlternative(transcript=alternative.transcript, confidence=alternative.confidence)
    for word in alternative.words:
        answer.words.add(
            start_time=word.start_offset,
            end_time=word.end_offset,
            word=word.word,
            confidence=word.confidence,
            speaker_label=word.speaker_label,
            speaker_tag=speaker_tag(word.speaker_label),
        )
    return answer
