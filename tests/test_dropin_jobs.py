"""Jobs and speakers through the drop-in APIs, with the official clients unchanged: Google's
long_running_recognize polled through google.longrunning.Operations to a Google response, and
speaker diarization through Google's recognize and Riva's offline_recognize. One router with a
job store, a worker and the diarization service, in front of the session's whisper_en."""

import grpc
import pytest
import riva.client
from google.api_core import exceptions
from google.cloud import speech_v1
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

from tests.conftest import dropin_router_settings
from tests.dropin_support import JFK, JFK_SECONDS, check_word_timings, reference, wer
from tests.jobs_support import running_worker, worker_settings
from tests.support import clip, metric, running_router, words
from tests.test_router_diarization import KEYWORDS
from tests.voices import LINES, conversation

Config = speech_v1.RecognitionConfig
# Four turns (two each) keep the test short; one keyword of each line tells who said it.
TURNS = 4


@pytest.fixture(scope="module")
def stack(dropin_whisper, diarization_server, audio_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("dropin-jobs")
    # Jobs may name the shared clips and the tests' folders by file://.
    roots = dict(jobs_uri_file_roots=[audio_dir, tmp_path_factory.getbasetemp()])
    settings = dropin_router_settings(
        dropin_whisper.target,
        data_dir=data,
        diarization=f"dns:///{diarization_server.target}",
        **roots,
    )
    with (
        running_router(settings) as router,
        running_worker(
            worker_settings(
                router.target,
                data_dir=data,
                diarization_target=diarization_server.target,
                **roots,
            )
        ),
    ):
        yield router


@pytest.fixture(scope="module")
def client(stack):
    channel = grpc.insecure_channel(stack.target)
    yield speech_v1.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    channel.close()


@pytest.fixture(scope="module")
def talk():
    return conversation(LINES[:TURNS])


def transcript_of(response) -> str:
    return " ".join(r.alternatives[0].transcript for r in response.results).strip()


def test_long_running_recognize_is_polled_to_a_google_response(client, stack, audio_dir):
    accepted = metric(stack, "stt_jobs_accepted_total", api="google")
    config = Config(language_code="en-US", enable_word_time_offsets=True)
    operation = client.long_running_recognize(
        config=config, audio=speech_v1.RecognitionAudio(content=clip(JFK)), timeout=60
    )
    by_uri = client.long_running_recognize(
        config=config,
        audio=speech_v1.RecognitionAudio(uri=(audio_dir / JFK).as_uri()),
        timeout=60,
    )
    for job in (operation, by_uri):
        response = job.result(timeout=240)
        assert isinstance(response, speech_v1.LongRunningRecognizeResponse)
        assert wer(reference(JFK), transcript_of(response)) == 0.0, transcript_of(response)
        found = [w for r in response.results for w in r.alternatives[0].words]
        timings = [
            (w.word, w.start_time.total_seconds(), w.end_time.total_seconds()) for w in found
        ]
        check_word_timings(timings, JFK_SECONDS)
        assert response.total_billed_time.total_seconds() == pytest.approx(JFK_SECONDS, abs=0.1)
        meta = job.metadata
        assert isinstance(meta, speech_v1.LongRunningRecognizeMetadata)
        assert meta.progress_percent == 100
        assert meta.start_time <= meta.last_update_time
    assert operation.metadata.uri == "" and by_uri.metadata.uri == (audio_dir / JFK).as_uri()
    assert metric(stack, "stt_jobs_accepted_total", api="google") == accepted + 2
    asked = metric(stack, "stt_router_requests_total", api="google", method="LongRunningRecognize")
    assert asked >= 2


def test_a_failed_job_raises_the_client_s_own_error(client, tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF nothing that decodes" * 100)
    operation = client.long_running_recognize(
        config=Config(language_code="en-US"),
        audio=speech_v1.RecognitionAudio(uri=garbage.as_uri()),
        timeout=60,
    )
    with pytest.raises(exceptions.InvalidArgument) as failed:
        operation.result(timeout=120)
    assert failed.value.grpc_status_code is grpc.StatusCode.INVALID_ARGUMENT
    assert operation.done() and operation.metadata.uri == garbage.as_uri()


def test_an_unknown_operation_is_the_client_s_not_found(client):
    with pytest.raises(exceptions.NotFound):
        client.transport.operations_client.get_operation("no-such-operation", timeout=10)
    with pytest.raises(exceptions.NotFound):
        client.get_operation({"name": "no-such-operation"}, timeout=10)


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"audio": {"uri": "ftp://host/meeting.flac"}}, "audio.uri 'ftp://host/meeting.flac'"),
        ({"config": {"model": "whisper_en"}}, "config.model 'whisper_en'"),
        ({"output_config": {"gcs_uri": "gs://bucket/out.json"}}, "output_config"),
    ],
)
def test_long_running_recognize_refuses_what_a_job_cannot_do(client, request_fields, field):
    request = {"config": {"language_code": "en-US"}, "audio": {"content": b"\0" * 3200}}
    request.update(request_fields)
    request["config"].setdefault("language_code", "en-US")
    with pytest.raises(exceptions.InvalidArgument) as refused:
        client.long_running_recognize(request=request, timeout=30)
    assert field in refused.value.message


def said_by(labelled: list[tuple[str, str]]) -> list[str]:
    """The speaker of each keyword, where it is first said."""
    first: dict[str, str] = {}
    for text, speaker in labelled:
        for heard in words(text):
            first.setdefault(heard, speaker)
    return [first[k] for k in KEYWORDS[:TURNS]]


def test_google_recognize_labels_words_with_speakers_as_google_does(client, talk):
    speakers = speech_v1.SpeakerDiarizationConfig(enable_speaker_diarization=True)
    response = client.recognize(
        config=Config(language_code="en-US", diarization_config=speakers),
        audio=speech_v1.RecognitionAudio(content=talk.wav),
        timeout=300,
    )
    *turns, everything = response.results
    # Google's way: the last result holds every word with its speaker, and no transcript.
    assert everything.alternatives[0].transcript == ""
    labelled = [(w.word, w.speaker_label) for w in everything.alternatives[0].words]
    assert labelled == [(w.word, w.speaker_label) for r in turns for w in r.alternatives[0].words]
    assert {label for _, label in labelled} == {"1", "2"}
    assert all(w.speaker_tag == int(w.speaker_label) for w in everything.alternatives[0].words)
    for result in turns:
        assert len({w.speaker_label for w in result.alternatives[0].words}) == 1
    assert said_by(labelled) == ["1", "2"] * (TURNS // 2)


def test_riva_offline_recognize_tags_words_with_speakers(stack, talk):
    auth = riva.client.Auth(uri=stack.target)
    try:
        config = riva.client.RecognitionConfig(language_code="en-US")
        riva.client.add_speaker_diarization_to_config(config, True, 4)
        response = riva.client.ASRService(auth).offline_recognize(talk.wav, config)
    finally:
        auth.channel.close()
    tagged = [
        (w.word, str(w.speaker_tag)) for r in response.results for w in r.alternatives[0].words
    ]
    assert {tag for _, tag in tagged} == {"1", "2"}
    assert said_by(tagged) == ["1", "2"] * (TURNS // 2)
