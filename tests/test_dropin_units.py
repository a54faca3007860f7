"""The drop-in front ends' conversions, without servers: subtitles, encodings, endpointing,
speakers, and Google's jobs and their operations."""

import pytest
import srt
from google.cloud.speech_v1.types import cloud_speech
from google.protobuf import duration_pb2
from riva.client.proto import riva_asr_pb2
from stt.v1 import stt_pb2

from services.core.errors import InvalidConfig, SttError
from services.jobs.store import DONE, Job
from services.router.dropin import google_convert, google_jobs, openai_formats, riva_convert
from services.router.dropin.fields import speaker_tag
from services.router.jobs.operations import STT_ONLY, to_operation


def test_subtitles_count_hours_and_number_the_cues():
    parts = [
        openai_formats.Cue(0.12, 7.5, "first", 0.9, ()),
        openai_formats.Cue(3725.5, 3727.25, "second", 0.8, ()),
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


def labelled_results() -> list[stt_pb2.SpeechRecognitionResult]:
    """Two results, one speaker each, as the router's Recognize with speakers gives them."""
    made = []
    for index, (text, label) in enumerate((("hello there", "1"), ("hi", "2"))):
        result = stt_pb2.SpeechRecognitionResult(language_code="en")
        result.result_end_offset.FromSeconds(index + 1)
        top = result.alternatives.add(transcript=text, confidence=0.9)
        for word in text.split():
            top.words.add(word=word, speaker_label=label)
        made.append(result)
    return made


def test_google_speakers_come_as_google_gives_them():
    results = google_convert.google_results(labelled_results())
    assert [r.alternatives[0].transcript for r in results] == ["hello there", "hi", ""]
    everything = results[-1].alternatives[0].words
    assert [(w.word, w.speaker_label, w.speaker_tag) for w in everything] == [
        ("hello", "1", 1),
        ("there", "1", 1),
        ("hi", "2", 2),
    ]
    assert results[-1].result_end_time.seconds == 2
    plain = labelled_results()
    for result in plain:
        for word in result.alternatives[0].words:
            word.speaker_label = ""
    assert len(google_convert.google_results(plain)) == 2, "no speakers, no extra result"
    assert (speaker_tag("3"), speaker_tag("SPEAKER_00"), speaker_tag("")) == (3, 0, 0)


def test_google_and_riva_diarization_configs_map_to_ours():
    speakers = {"enable_speaker_diarization": True, "min_speaker_count": 2, "max_speaker_count": 5}
    google = cloud_speech.RecognitionConfig.pb()(language_code="en", diarization_config=speakers)
    converted, _ = google_convert.recognition_config(google, [], "config")
    assert (
        converted.diarization_config.min_speaker_count,
        converted.diarization_config.max_speaker_count,
    ) == (2, 5)
    off = cloud_speech.RecognitionConfig.pb()(diarization_config={"max_speaker_count": 5})
    assert not google_convert.recognition_config(off, [], "config")[0].HasField(
        "diarization_config"
    )
    riva = riva_asr_pb2.RecognitionConfig(language_code="en")
    riva.diarization_config.enable_speaker_diarization = True
    riva.diarization_config.max_speaker_count = 3
    converted, _ = riva_convert.recognition_config(riva, [], "config")
    assert converted.diarization_config.enable_speaker_diarization
    assert converted.diarization_config.max_speaker_count == 3
    response = stt_pb2.RecognizeResponse(results=labelled_results())
    tags = [
        w.speaker_tag
        for r in riva_convert.recognize_response(response, "id").results
        for w in r.alternatives[0].words
    ]
    assert tags == [1, 1, 2]


def google_job(**fields):
    request = {"config": {"language_code": "en-US"}, "audio": {"content": b"audio"}, **fields}
    return cloud_speech.LongRunningRecognizeRequest.pb()(**request)


def test_google_long_running_requests_become_stt_jobs():
    uri = "file:///recordings/meeting.flac"
    speakers = {"enable_speaker_diarization": True, "max_speaker_count": 3}
    job = google_jobs.long_running_request(
        google_job(
            audio={"uri": uri}, config={"language_code": "en", "diarization_config": speakers}
        ),
        ["whisper_en"],
    )
    assert job.audio.uri == uri and job.config.language_code == "en"
    assert job.config.diarization_config.max_speaker_count == 3
    assert google_jobs.long_running_request(google_job(), []).audio.content == b"audio"
    for uri in ("gs://bucket/a.flac", "s3://bucket/a.flac"):  # the job store checks buckets
        assert google_jobs.long_running_request(google_job(audio={"uri": uri}), []).audio.uri == uri
    for audio, message in (
        ({"uri": "ftp://bucket/a.flac"}, "ftp:// is not readable here"),
        ({"uri": "/recordings/a.flac"}, "it names no scheme"),
    ):
        with pytest.raises(InvalidConfig, match=message):
            google_jobs.long_running_request(google_job(audio=audio), [])


def finished_job(api: str) -> Job:
    request = stt_pb2.LongRunningRecognizeRequest(audio={"uri": "file:///a.flac"})
    response = stt_pb2.LongRunningRecognizeResponse(
        results=labelled_results(), total_billed_time=duration_pb2.Duration(seconds=2)
    )
    return Job(
        name="job-1",
        tenant="t",
        state=DONE,
        request=request.SerializeToString(),
        request_id="rid",
        language="en",
        created=10.0,
        updated=12.5,
        started=10.5,
        finished=12.5,
        attempts=1,
        worker="w",
        progress=100,
        audio_seconds=2.0,
        plan=None,
        response=response.SerializeToString(),
        error_code=0,
        error_message="",
        api=api,
    )


def test_a_job_s_operation_speaks_the_dialect_it_came_in():
    dialects = {**STT_ONLY, "google": google_jobs.DIALECT}
    operation = to_operation(finished_job("google"), dialects)
    response = google_jobs.LongRunningRecognizeResponse()
    metadata = google_jobs.LongRunningRecognizeMetadata()
    assert operation.response.Unpack(response) and operation.metadata.Unpack(metadata)
    assert len(response.results) == 3 and response.total_billed_time.seconds == 2
    assert (metadata.progress_percent, metadata.uri) == (100, "file:///a.flac")
    assert metadata.last_update_time.ToMilliseconds() == 12_500
    ours = to_operation(finished_job("stt"), dialects)
    assert ours.response.Unpack(stt_pb2.LongRunningRecognizeResponse())
    with pytest.raises(SttError, match="'riva' API"):
        to_operation(finished_job("riva"), dialects)
