"""Translation between stt.v1 messages and the core's plain data. Only servicers use it."""

from __future__ import annotations

import math

from google.protobuf import duration_pb2
from stt.v1 import stt_pb2

from services.core import languages
from services.core.audio import AudioSpec
from services.core.backend import Alternative, DecodeOptions, Segment, Word
from services.core.errors import InvalidAudio, InvalidConfig
from services.core.hints import (
    boosted_phrases,
    candidate_code,
    candidates_of,
    language_choice,
    scored_phrases,
)
from services.core.recognizer import Recognition, RecognitionJob
from services.core.text_form import TextForm, text_form

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


def to_detection_job(
    request: stt_pb2.DetectLanguageRequest,
    vad_default: bool,
    served: tuple[str, ...] = (),
    service: str = "",
) -> RecognitionJob:
    """A job for language detection: how to read the audio, and the candidate languages
    when alternatives are given."""
    config = request.config
    if request.audio.WhichOneof("audio_source") is None:
        raise InvalidAudio("audio is empty: put the audio bytes in audio.content")
    return RecognitionJob(
        content=request.audio.content,
        audio=audio_spec(config),
        options=DecodeOptions(candidates=candidates_of(config, served, service)),
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
        _ENCODINGS[config.encoding],
        config.sample_rate_hertz,
        config.audio_channel_count,
        config.enable_separate_recognition_per_channel,
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
    language, candidates = language_choice(config, served, service)
    boosted, boost = boosted_phrases(config)
    return DecodeOptions(
        language=language,
        beam_size=decoding.beam_size,
        temperature=temperature,
        initial_prompt=decoding.initial_prompt,
        translate_to_english=decoding.translate_to_english,
        word_timestamps=config.enable_word_time_offsets or config.enable_word_confidence,
        phrases=scored_phrases(config),
        boosted=boosted,
        boost=boost,
        candidates=candidates,
    )


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
    detected = not config.language_code.strip() or bool(config.alternative_language_codes)
    if config.alternative_language_codes:
        language = candidate_code(language, config)
    return stt_pb2.RecognizeResponse(
        results=_results(recognition, language, config),
        total_billed_time=duration(recognition.audio_seconds),
        audio_duration=duration(recognition.audio_seconds),
        request_id=request_id,
        language_code=language,
        language_probability=transcript.language_probability if detected else 0.0,
        model=model,
        service=service,
        processing_time=duration(processing_s),
    )


def _results(
    recognition: Recognition, language: str, config: stt_pb2.RecognitionConfig
) -> list[stt_pb2.SpeechRecognitionResult]:
    if recognition.channels is None:
        return [result_message(s, language, config) for s in recognition.transcript.segments]
    # Each channel's results tagged 1, 2, ..., all of them in time order.
    tagged = []
    for tag, transcript in enumerate(recognition.channels, start=1):
        code = transcript.language or language
        if config.alternative_language_codes:
            code = candidate_code(code, config)
        for segment in transcript.segments:
            result = result_message(segment, code, config)
            result.channel_tag = tag
            tagged.append((segment.start, tag, result))
    return [result for _, _, result in sorted(tagged, key=lambda item: item[:2])]


def result_message(
    segment: Segment, language: str, config: stt_pb2.RecognitionConfig
) -> stt_pb2.SpeechRecognitionResult:
    readings = [Alternative(segment.text, segment.confidence, segment.words)]
    readings.extend(segment.alternatives)
    # Only phrase scoring makes several readings; then 0 means all of them, as documented.
    wanted = config.max_alternatives or len(readings)
    form = text_form(config, language)
    return stt_pb2.SpeechRecognitionResult(
        alternatives=[_alternative(r, config, form) for r in readings[:wanted]],
        result_start_offset=duration(segment.start),
        result_end_offset=duration(segment.end),
        language_code=language,
    )


def _alternative(
    reading: Alternative, config: stt_pb2.RecognitionConfig, form: TextForm
) -> stt_pb2.SpeechRecognitionAlternative:
    alternative = stt_pb2.SpeechRecognitionAlternative(
        transcript=form.transcript(reading.text.strip()), confidence=reading.confidence
    )
    if config.enable_word_time_offsets or config.enable_word_confidence:
        for word in reading.words:
            written = form.word(word.text.strip())
            if written:
                _word(alternative.words.add(word=written), word, config)
    return alternative


def _word(info: stt_pb2.WordInfo, word: Word, config: stt_pb2.RecognitionConfig) -> None:
    if config.enable_word_time_offsets:
        info.start_offset.CopyFrom(duration(word.start))
        info.end_offset.CopyFrom(duration(word.end))
    if config.enable_word_confidence:
        info.confidence = word.confidence
