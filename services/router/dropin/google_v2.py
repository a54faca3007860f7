"""Google Cloud Speech v2 messages to stt.v1 and back (`google-cloud-speech`'s `speech_v2`
types), for Recognize and StreamingRecognize with the configuration inline on the `_`
recognizer (`projects/P/locations/L/recognizers/_`), as v2's samples call them.

Mapped: `auto_decoding_config` (the container is detected) or `explicit_decoding_config`
(`LINEAR16`, `MULAW`, `FLAC`, `MP3`, `OGG_OPUS`, `WEBM_OPUS`, the AAC containers; rate,
channels), `language_codes` (the first is the language, the others alternatives; `auto` or
none: detected), every model name (routed by language; a backend's name pins it), the
`features` (profanity filter, word times and confidences, max alternatives, separate
recognition per channel, diarization: its presence turns it on), inline phrase sets (their
phrases boosted), and in streams `interim_results`, `enable_voice_activity_events` and
`voice_activity_timeout.speech_end_timeout`. Everything else that changes an answer is
refused with INVALID_ARGUMENT naming it: a stored recognizer, `config_mask`, `uri`,
references to stored phrase sets or classes, transcript normalization, translation, the
denoiser, a custom prompt, spoken punctuation and emojis, `speech_start_timeout`,
`endpointing_sensitivity`, diarization in a stream. Words come bare, as Google's.
"""

from __future__ import annotations

import re

from google.cloud.speech_v2.types import cloud_speech as v2
from stt.v1 import stt_pb2

from services.core.errors import InvalidConfig
from services.core.stream_convert import require_config
from services.router.dropin.fields import copy_phrases, pinned_backend, unsupported
from services.router.dropin.google_convert import ROUTED_MODELS as V1_MODELS

SERVICE = "google.cloud.speech.v2.Speech"
API = "google_v2"
RecognizeRequest = v2.RecognizeRequest.pb()
StreamingRecognizeRequest = v2.StreamingRecognizeRequest.pb()
Explicit = v2.ExplicitDecodingConfig.pb().AudioEncoding
Encoding = stt_pb2.RecognitionConfig.AudioEncoding
Features = v2.RecognitionFeatures.pb()
Sensitivity = v2.StreamingRecognitionFeatures.pb().EndpointingSensitivity

RECOGNIZER = re.compile(r"^projects/[^/]+/locations/[^/]+/recognizers/_$")
ROUTED_MODELS = (
    *V1_MODELS,
    *("long", "short", "telephony", "telephony_short", "chirp", "chirp_2", "chirp_3"),
)
# Phrases of an inline phrase set bias recognition even without a boost of their own.
DEFAULT_BOOST = 1.0
ENCODINGS = {
    Explicit.LINEAR16: Encoding.LINEAR16,
    Explicit.MULAW: Encoding.MULAW,
    Explicit.FLAC: Encoding.FLAC,
    Explicit.MP3: Encoding.MP3,
    Explicit.OGG_OPUS: Encoding.OGG_OPUS,
    Explicit.WEBM_OPUS: Encoding.WEBM_OPUS,
    # Containers the decoder reads from their own header.
    Explicit.MP4_AAC: Encoding.ENCODING_UNSPECIFIED,
    Explicit.M4A_AAC: Encoding.ENCODING_UNSPECIFIED,
    Explicit.MOV_AAC: Encoding.ENCODING_UNSPECIFIED,
}
AUTO_LANGUAGE = "auto"


def recognize_request(request, backends: list[str]) -> tuple[stt_pb2.RecognizeRequest, str | None]:
    _check_recognizer(request.recognizer)
    if request.HasField("config_mask"):
        raise unsupported("config_mask", "the configuration is the request's own, inline")
    config, backend = recognition_config(request.config, backends, "config")
    if request.WhichOneof("audio_source") == "uri":
        raise unsupported("uri", "recognize takes the audio bytes in content")
    return stt_pb2.RecognizeRequest(config=config, audio={"content": request.content}), backend


def recognition_config(
    config, backends: list[str], field: str
) -> tuple[stt_pb2.RecognitionConfig, str | None]:
    _refuse_unsupported(config, field)
    stt_config = stt_pb2.RecognitionConfig(bare_words=True)
    _decoding(config, stt_config, field)
    codes = [code for code in config.language_codes if code.strip()]
    if codes and codes != [AUTO_LANGUAGE]:
        stt_config.language_code = codes[0]
        stt_config.alternative_language_codes.extend(codes[1:])
    features = config.features
    stt_config.profanity_filter = features.profanity_filter
    stt_config.enable_word_time_offsets = features.enable_word_time_offsets
    stt_config.enable_word_confidence = features.enable_word_confidence
    stt_config.max_alternatives = features.max_alternatives
    separate = Features.MultiChannelMode.SEPARATE_RECOGNITION_PER_CHANNEL
    stt_config.enable_separate_recognition_per_channel = features.multi_channel_mode == separate
    if features.HasField("diarization_config"):
        speakers = features.diarization_config
        stt_config.diarization_config.enable_speaker_diarization = True
        stt_config.diarization_config.min_speaker_count = speakers.min_speaker_count
        stt_config.diarization_config.max_speaker_count = speakers.max_speaker_count
    _phrases(config.adaptation, stt_config, f"{field}.adaptation")
    return stt_config, pinned_backend(config.model, backends, f"{field}.model", ROUTED_MODELS)


def _decoding(config, into: stt_pb2.RecognitionConfig, field: str) -> None:
    chosen = config.WhichOneof("decoding_config")
    if chosen is None:
        raise InvalidConfig(
            f"{field} needs auto_decoding_config (the container is detected) or "
            "explicit_decoding_config"
        )
    if chosen == "auto_decoding_config":
        return
    explicit = config.explicit_decoding_config
    if explicit.encoding not in ENCODINGS:
        name = Explicit.Name(explicit.encoding)
        accepted = ", ".join(Explicit.Name(e) for e in ENCODINGS)
        raise unsupported(f"{field}.explicit_decoding_config.encoding {name}", f"use {accepted}")
    into.encoding = ENCODINGS[explicit.encoding]
    into.sample_rate_hertz = explicit.sample_rate_hertz
    into.audio_channel_count = explicit.audio_channel_count


def _phrases(adaptation, into: stt_pb2.RecognitionConfig, field: str) -> None:
    """Inline phrase sets, as boosted speech contexts (a phrase's own boost, else its set's,
    else a small one: adaptation phrases are always hints, never candidate transcripts)."""
    if adaptation.custom_classes:
        raise unsupported(f"{field}.custom_classes", "classes are not expanded here")
    for index, entry in enumerate(adaptation.phrase_sets):
        if entry.WhichOneof("value") != "inline_phrase_set":
            raise unsupported(
                f"{field}.phrase_sets[{index}].phrase_set",
                "phrase sets are not stored here: give them inline",
            )
        phrase_set = entry.inline_phrase_set
        contexts = [
            stt_pb2.SpeechContext(
                phrases=[p.value], boost=p.boost or phrase_set.boost or DEFAULT_BOOST
            )
            for p in phrase_set.phrases
        ]
        copy_phrases(contexts, into, f"{field}.phrase_sets[{index}].inline_phrase_set.phrases")


def _refuse_unsupported(config, field: str) -> None:
    for name, why in (
        ("transcript_normalization", "transcripts come as recognised"),
        ("translation_config", "use stt.v1 or OpenAI's translations for English text"),
        ("denoiser_config", "the audio is recognised as it is"),
    ):
        if config.HasField(name):
            raise unsupported(f"{field}.{name}", why)
    features = config.features
    for name in ("enable_spoken_punctuation", "enable_spoken_emojis"):
        if getattr(features, name):
            raise unsupported(f"{field}.features.{name}", "spoken punctuation is transcribed")
    if features.HasField("custom_prompt_config"):
        raise unsupported(f"{field}.features.custom_prompt_config", "no prompts are taken here")


def _check_recognizer(name: str) -> None:
    if not RECOGNIZER.match(name):
        raise InvalidConfig(
            f"recognizer {name[:200]!r} is not served: recognizers are not stored here; use "
            "projects/PROJECT/locations/LOCATION/recognizers/_ with the config in the request"
        )


def stream_setup(
    first, backends: list[str]
) -> tuple[stt_pb2.StreamingRecognizeRequest, str | None]:
    require_config(first)
    _check_recognizer(first.recognizer)
    streaming = first.streaming_config
    field = "streaming_config.config"
    if streaming.HasField("config_mask"):
        raise unsupported("streaming_config.config_mask", "the configuration is inline")
    if streaming.config.features.HasField("diarization_config"):
        raise unsupported(
            f"{field}.features.diarization_config",
            "speakers are told apart over the whole audio, so only in recognize",
        )
    config, backend = recognition_config(streaming.config, backends, field)
    features = streaming.streaming_features
    stt_streaming = stt_pb2.StreamingRecognitionConfig(
        config=config,
        interim_results=features.interim_results,
        enable_voice_activity_events=features.enable_voice_activity_events,
    )
    timeouts = features.voice_activity_timeout
    if timeouts.HasField("speech_start_timeout"):
        raise unsupported(
            "streaming_config.streaming_features.voice_activity_timeout.speech_start_timeout",
            "a stream waits for speech as long as it is open",
        )
    if timeouts.HasField("speech_end_timeout"):
        stt_streaming.speech_end_timeout.CopyFrom(timeouts.speech_end_timeout)
    if features.endpointing_sensitivity != Sensitivity.ENDPOINTING_SENSITIVITY_UNSPECIFIED:
        raise unsupported(
            "streaming_config.streaming_features.endpointing_sensitivity",
            "set voice_activity_timeout.speech_end_timeout, the pause that ends an utterance",
        )
    return stt_pb2.StreamingRecognizeRequest(streaming_config=stt_streaming), backend


def stream_message(message) -> stt_pb2.StreamingRecognizeRequest:
    """A later message; a second streaming_config goes on, for the service to refuse."""
    if message.WhichOneof("streaming_request") == "streaming_config":
        return stt_pb2.StreamingRecognizeRequest(streaming_config={})
    return stt_pb2.StreamingRecognizeRequest(audio_content=message.audio)
