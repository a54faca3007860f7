"""Translation between stt.v1 messages and the core's plain data. Only servicers use it."""

from __future__ import annotations

import math

from google.protobuf import duration_pb2
from stt.v1 import stt_pb2

from services.core import languages
from services.core.audio import AudioSpec
from services.core.backend import Alternative, DecodeOptions, Segment, Word
from services.core.errors import InvalidAudio, InvalidConfig
from services.core.recognizer import Recognition, RecognitionJob

Encoding = stt_pb2.RecognitionConfig.AudioEncoding
_ENCODINGS = {
    Encoding.ENCODING_UNSPECIFIED: "detect",
    Encoding.LINEAR16: "linear16",
    Encoding.MULAW: "mulaw",
    # Compressed formats carry their own container header: detected from the bytes.
    Encoding.FLAC: "detect",
    Encoding.OGG_OPUS: "detect",
    Encoding.MP3: "detect",
    Encoding.WEBM_OPUS: "detect",
}
MAX_BEAM_SIZE = 16
MAX_PHRASES = 100
MAX_PHRASE_CHARS = 200


def to_job(
    request: stt_pb2.RecognizeRequest, served: tuple[str, ...], service: str, vad_default: bool
) -> RecognitionJob:
    config = request.config
    if request.audio.WhichOneof("audio_source") is None:
        raise InvalidAudio("audio is empty: put the audio bytes in audio.content")
    return RecognitionJob(
        content=request.audio.content,
        audio=audio_spec(config),
        options=decode_options(config, served, service),
        vad=_vad(config, vad_default),
    )


def to_detection_job(request: stt_pb2.DetectLanguageRequest, vad_default: bool) -> RecognitionJob:
    """A job for language detection: only how to read the audio matters."""
    config = request.config
    if request.audio.WhichOneof("audio_source") is None:
        raise InvalidAudio("audio is empty: put the audio bytes in audio.content")
    return RecognitionJob(
        content=request.audio.content,
        audio=audio_spec(config),
        options=DecodeOptions(),
        vad=_vad(config, vad_default),
    )


def _vad(config: stt_pb2.RecognitionConfig, default: bool) -> bool:
    if config.HasField("enable_voice_activity_detection"):
        return config.enable_voice_activity_detection
    return default


def audio_spec(config: stt_pb2.RecognitionConfig) -> AudioSpec:
    if config.encoding not in _ENCODINGS:
        raise InvalidConfig(f"config.encoding {config.encoding} is not a known AudioEncoding")
    if config.sample_rate_hertz < 0:
        raise InvalidConfig(
            f"config.sample_rate_hertz must be >= 0, got {config.sample_rate_hertz}"
        )
    if config.audio_channel_count < 0:
        raise InvalidConfig(
            f"config.audio_channel_count must be >= 0, got {config.audio_channel_count}"
        )
    return AudioSpec(
        _ENCODINGS[config.encoding], config.sample_rate_hertz, config.audio_channel_count
    )


def decode_options(
    config: stt_pb2.RecognitionConfig, served: tuple[str, ...], service: str
) -> DecodeOptions:
    if config.max_alternatives < 0:
        raise InvalidConfig(f"config.max_alternatives must be >= 0, got {config.max_alternatives}")
    decoding = config.decoding
    if not 0 <= decoding.beam_size <= MAX_BEAM_SIZE:
        raise InvalidConfig(
            f"config.decoding.beam_size must be 0 (service default) to {MAX_BEAM_SIZE}, "
            f"got {decoding.beam_size}"
        )
    if config.diarization_config.enable_speaker_diarization:
        raise InvalidConfig(
            "config.diarization_config.enable_speaker_diarization is served by the router, which "
            f"joins the words of a language service with the diarization service's speaker "
            f"turns; {service} only transcribes: send the request to the router"
        )
    temperature = decoding.temperature if decoding.HasField("temperature") else None
    if temperature is not None and not (math.isfinite(temperature) and 0 <= temperature <= 2):
        raise InvalidConfig(f"config.decoding.temperature must be in [0, 2], got {temperature}")
    return DecodeOptions(
        language=languages.resolve(config.language_code, served, service),
        beam_size=decoding.beam_size,
        temperature=temperature,
        initial_prompt=decoding.initial_prompt,
        translate_to_english=decoding.translate_to_english,
        word_timestamps=config.enable_word_time_offsets or config.enable_word_confidence,
        phrases=_phrases(config),
    )


def _phrases(config: stt_pb2.RecognitionConfig) -> tuple[str, ...]:
    phrases = tuple(p.strip() for c in config.speech_contexts for p in c.phrases)
    if len(phrases) > MAX_PHRASES:
        raise InvalidConfig(
            f"config.speech_contexts holds {len(phrases)} phrases; at most {MAX_PHRASES} are scored"
        )
    for index, phrase in enumerate(phrases):
        if not phrase or len(phrase) > MAX_PHRASE_CHARS:
            raise InvalidConfig(
                f"speech_contexts phrase {index} must be 1 to {MAX_PHRASE_CHARS} characters, "
                f"got {len(phrase)}"
            )
    return phrases


def duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(round(seconds * 1e9))
    return value


def to_response(
    recognition: Recognition,
    config: stt_pb2.RecognitionConfig,
    *,
    request_id: str,
    model: str,
    service: str,
    processing_s: float,
) -> stt_pb2.RecognizeResponse:
    transcript = recognition.transcript
    language = transcript.language or languages.primary_subtag(config.language_code)
    detected = not config.language_code.strip()
    return stt_pb2.RecognizeResponse(
        results=[result_message(s, language, config) for s in transcript.segments],
        total_billed_time=duration(recognition.audio_seconds),
        audio_duration=duration(recognition.audio_seconds),
        request_id=request_id,
        language_code=language,
        language_probability=transcript.language_probability if detected else 0.0,
        model=model,
        service=service,
        processing_time=duration(processing_s),
    )


def result_message(
    segment: Segment, language: str, config: stt_pb2.RecognitionConfig
) -> stt_pb2.SpeechRecognitionResult:
    readings = [Alternative(segment.text, segment.confidence, segment.words)]
    readings.extend(segment.alternatives)
    # Only phrase scoring makes several readings; then 0 means all of them, as documented.
    wanted = config.max_alternatives or len(readings)
    return stt_pb2.SpeechRecognitionResult(
        alternatives=[_alternative(r, config) for r in readings[:wanted]],
        result_start_offset=duration(segment.start),
        result_end_offset=duration(segment.end),
        language_code=language,
    )


def _alternative(
    reading: Alternative, config: stt_pb2.RecognitionConfig
) -> stt_pb2.SpeechRecognitionAlternative:
    alternative = stt_pb2.SpeechRecognitionAlternative(
        transcript=reading.text.strip(), confidence=reading.confidence
    )
    if config.enable_word_time_offsets or config.enable_word_confidence:
        for word in reading.words:
            _word(alternative.words.add(word=word.text.strip()), word, config)
    return alternative


def _word(info: stt_pb2.WordInfo, word: Word, config: stt_pb2.RecognitionConfig) -> None:
    if config.enable_word_time_offsets:
        info.start_offset.CopyFrom(duration(word.start))
        info.end_offset.CopyFrom(duration(word.end))
    if config.enable_word_confidence:
        info.confidence = word.confidence
