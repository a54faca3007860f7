"""The drop-in front ends' conversions, without servers: subtitles, encodings, endpointing."""

import pytest
import srt
from google.cloud.speech_v1.types import cloud_speech
from riva.client.proto import riva_asr_pb2
from stt.v1 import stt_pb2

from services.core.errors import InvalidConfig
from services.router.dropin import google_convert, openai_formats, riva_convert


def test_subtitles_count_hours_and_number_the_cues():
    parts = [
        openai_formats.Segment(0.12, 7.5, "first", 0.9, ()),
        openai_formats.Segment(3725.5, 3727.25, "second", 0.8, ()),
    ]
    cues = list(srt.parse(openai_formats.subtitles(parts, ",")))
    assert [(c.index, c.content) for c in cues] == [(1, "first"), (2, "second")]
    assert cues[1].start.total_seconds() == 3725.5 and cues[1].end.total_seconds() == 3727.25
    assert openai_formats.subtitles(parts, ".").startswith("00:00:00.120 --> 00:00:07.500\n")


def test_google_encodings_keep_their_meaning():
    for name in google_convert.ENCODINGS:
        config = cloud_speech.RecognitionConfig.pb()(encoding=name, language_code="en")
        converted, backend = google_convert.recognition_config(config, ["whisper_en"], "config")
        assert stt_pb2.RecognitionConfig.AudioEncoding.Name(converted.encoding) == name
        assert backend is None
    pinned = cloud_speech.RecognitionConfig.pb()(model="whisper_en")
    assert google_convert.recognition_config(pinned, ["whisper_en"], "config")[1] == "whisper_en"


def test_a_second_google_streaming_config_goes_on_for_the_service_to_refuse():
    message = cloud_speech.StreamingRecognizeRequest.pb()(streaming_config={})
    converted = google_convert.stream_message(message)
    assert converted.WhichOneof("streaming_request") == "streaming_config"


def riva_stream(**endpointing) -> riva_asr_pb2.StreamingRecognizeRequest:
    config = riva_asr_pb2.RecognitionConfig(
        language_code="en", endpointing_config=riva_asr_pb2.EndpointingConfig(**endpointing)
    )
    streaming = riva_asr_pb2.StreamingRecognitionConfig(config=config, interim_results=True)
    return riva_asr_pb2.StreamingRecognizeRequest(streaming_config=streaming)


def test_riva_stop_history_is_the_pause_that_ends_an_utterance():
    setup, _ = riva_convert.stream_setup(riva_stream(stop_history=800), [])
    assert setup.streaming_config.speech_end_timeout.ToMilliseconds() == 800
    assert setup.streaming_config.interim_results
    with pytest.raises(InvalidConfig, match=r"endpointing_config\.start_threshold"):
        riva_convert.stream_setup(riva_stream(stop_history=800, start_threshold=0.3), [])
