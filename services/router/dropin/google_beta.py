"""Google Cloud Speech v1p1beta1 messages as v1's and back, so that the beta API is served by
the v1 front end's conversions (`google_convert`, `google_jobs`).

The beta messages are v1's field for field, with the same numbers, but for a few: the config's
deprecated `enable_speaker_diarization` (16) and `diarization_speaker_count` (17), mapped onto
`diarization_config` as Google does; encoding ALAW (10), refused by name; and fields that are
output only or hints (`using_legacy_models`, `output_config` in the metadata,
`RecognitionMetadata.obfuscated_id`), which v1 does not read. Everything else is the same
bytes, read as the other version's message. A job submitted through the beta API answers in
its types (`DIALECT`): the beta client unpacks nothing else.
"""

from __future__ import annotations

from google.cloud.speech_v1p1beta1.types import cloud_speech as beta

from services.router.dropin import google_jobs
from services.router.dropin.fields import unsupported
from services.router.jobs.operations import Dialect

SERVICE = "google.cloud.speech.v1p1beta1.Speech"
API = "google_v1p1beta1"

RecognizeRequest = beta.RecognizeRequest.pb()
RecognizeResponse = beta.RecognizeResponse.pb()
LongRunningRecognizeRequest = beta.LongRunningRecognizeRequest.pb()
LongRunningRecognizeResponse = beta.LongRunningRecognizeResponse.pb()
LongRunningRecognizeMetadata = beta.LongRunningRecognizeMetadata.pb()
StreamingRecognizeRequest = beta.StreamingRecognizeRequest.pb()
StreamingRecognizeResponse = beta.StreamingRecognizeResponse.pb()
BetaConfig = beta.RecognitionConfig.pb()


def to_v1(message, v1_type):
    """A beta request as the v1 message `v1_type`, its config's beta-only fields mapped."""
    if _config_of(message) is not None:
        streamed = "streaming_config" in message.DESCRIPTOR.fields_by_name
        message = _copy(message)
        _map_config(_config_of(message), "streaming_config.config" if streamed else "config")
    return v1_type.FromString(message.SerializeToString())


def from_v1(message, beta_type):
    """A v1 answer as the beta message `beta_type` (the same fields)."""
    return beta_type.FromString(message.SerializeToString())


def _config_of(message):
    if "streaming_config" in message.DESCRIPTOR.fields_by_name:
        if message.WhichOneof("streaming_request") != "streaming_config":
            return None
        return message.streaming_config.config
    return message.config


def _map_config(config, field: str) -> None:
    if config.encoding == BetaConfig.AudioEncoding.ALAW:
        raise unsupported(
            f"{field}.encoding ALAW", "use LINEAR16, FLAC, MULAW, OGG_OPUS, MP3 or WEBM_OPUS"
        )
    if config.enable_speaker_diarization and not config.HasField("diarization_config"):
        # The deprecated form: a count, when given, is the exact number of speakers.
        count = config.diarization_speaker_count
        config.diarization_config.enable_speaker_diarization = True
        config.diarization_config.min_speaker_count = count
        config.diarization_config.max_speaker_count = count
    config.ClearField("enable_speaker_diarization")
    config.ClearField("diarization_speaker_count")


def _copy(message):
    copied = type(message)()
    copied.CopyFrom(message)
    return copied


def _long_running_response(response):
    return from_v1(google_jobs.long_running_response(response), LongRunningRecognizeResponse)


def _long_running_metadata(metadata):
    return from_v1(google_jobs.long_running_metadata(metadata), LongRunningRecognizeMetadata)


DIALECT = Dialect(response=_long_running_response, metadata=_long_running_metadata)
