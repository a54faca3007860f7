"""Jobs as Google's long-running samples send them, with the official clients: audio in a
bucket (gs:// on gcp-storage-emulator, s3:// on moto's server, both on loopback) read under
the bucket allowlist (JOBS_URI_ALLOWED_BUCKETS), a beta job answered in beta types, each
channel on its own, alternative languages, and silence answered with no results. One router
with a job store and a worker, in front of the session's whisper_en."""

import socket

import boto3
import grpc
import pytest
from gcp_storage_emulator.server import create_server
from google.api_core import exceptions
from google.cloud import speech_v1, speech_v1p1beta1, storage
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport
from google.cloud.speech_v1p1beta1.services.speech import transports as beta_transports
from google.longrunning import operations_pb2_grpc
from moto.server import ThreadedMotoServer

from tests.conformance_support import call, silence, star_router_settings
from tests.jobs_support import (
    code_of,
    job_transcript,
    response_of,
    running_worker,
    submit,
    wait_done,
    worker_settings,
)
from tests.support import espeak, running_router

Config = speech_v1.RecognitionConfig
QUESTION = "How old is the Brooklyn Bridge?"
SPANISH = "Buenos días, me llamo Carlos y vivo en Madrid."
ALLOWED = "gs://audio,s3://audio"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def stores():
    """Both emulators, each with bucket `audio` holding `calls/question.wav`, and the
    environment the libraries find them (and test credentials) by."""
    content = espeak(QUESTION)
    gcs_port, s3_port = free_port(), free_port()
    gcs = create_server("127.0.0.1", gcs_port, in_memory=True)
    gcs.start()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    s3.start()
    closed = f"127.0.0.1:{free_port()}"  # no cloud metadata server is ever asked
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{gcs_port}")
        env.setenv("GCE_METADATA_HOST", closed)
        env.setenv("GCE_METADATA_IP", closed)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{s3_port}")
        env.setenv("AWS_ACCESS_KEY_ID", "test")
        env.setenv("AWS_SECRET_ACCESS_KEY", "test")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        storage.Client().create_bucket("audio").blob("calls/question.wav").upload_from_string(
            content
        )
        client = boto3.client("s3")
        client.create_bucket(Bucket="audio")
        client.put_object(Bucket="audio", Key="calls/question.wav", Body=content)
        client.create_bucket(Bucket="private")
        client.put_object(Bucket="private", Key="calls/question.wav", Body=content)
        yield
    s3.stop()
    gcs.stop()


@pytest.fixture(scope="module")
def stack(stores, dropin_whisper, tmp_path_factory):
    data = tmp_path_factory.mktemp("object-jobs")
    settings = star_router_settings(
        dropin_whisper.target, data_dir=data, jobs_uri_allowed_buckets=ALLOWED
    )
    with running_router(settings) as router:
        router.operations = operations_pb2_grpc.OperationsStub(router.channel)
        worker = worker_settings(router.target, data_dir=data, jobs_uri_allowed_buckets=ALLOWED)
        with running_worker(worker):
            yield router


@pytest.fixture(scope="module")
def google(stack):
    channel = grpc.insecure_channel(stack.target)
    yield speech_v1.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    channel.close()


def text_of(response) -> str:
    return " ".join(r.alternatives[0].transcript for r in response.results)


def test_google_long_running_recognize_reads_a_gs_object(google):
    uri = "gs://audio/calls/question.wav"
    operation = google.long_running_recognize(
        config=Config(language_code="en-US", enable_word_time_offsets=True),
        audio=speech_v1.RecognitionAudio(uri=uri),
        timeout=60,
    )
    response = operation.result(timeout=240)
    assert "Brooklyn" in text_of(response)
    assert response.results[0].alternatives[0].words[-1].word == "Bridge"
    assert operation.metadata.uri == uri


def test_stt_long_running_recognize_reads_an_s3_object(stack):
    accepted = submit(stack, uri="s3://audio/calls/question.wav", language_code="en")
    assert "Brooklyn" in job_transcript(wait_done(stack, accepted.name))


def test_a_bucket_not_allowed_is_refused_when_the_job_is_submitted(google, stack):
    with pytest.raises(exceptions.PermissionDenied) as refused:
        google.long_running_recognize(
            config=Config(language_code="en-US"),
            audio=speech_v1.RecognitionAudio(uri="s3://private/calls/question.wav"),
            timeout=60,
        )
    assert "bucket s3://private, which this deployment does not read from" in (
        refused.value.message
    )
    with pytest.raises(grpc.RpcError) as stt_refused:
        submit(stack, uri="gs://private/calls/question.wav", language_code="en")
    assert stt_refused.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_a_missing_object_fails_the_job_with_invalid_argument(stack):
    accepted = submit(stack, uri="gs://audio/calls/none.wav", language_code="en")
    failed = wait_done(stack, accepted.name)
    assert code_of(failed) is grpc.StatusCode.INVALID_ARGUMENT
    assert "names no object in bucket gs://audio" in failed.error.message


def test_a_beta_job_answers_in_beta_types(stack):
    channel = grpc.insecure_channel(stack.target)
    try:
        beta = speech_v1p1beta1.SpeechClient(
            transport=beta_transports.SpeechGrpcTransport(channel=channel)
        )
        operation = beta.long_running_recognize(
            config=speech_v1p1beta1.RecognitionConfig(
                language_code="en-US", enable_speaker_diarization=False, model="phone_call"
            ),
            audio=speech_v1p1beta1.RecognitionAudio(uri="gs://audio/calls/question.wav"),
            timeout=60,
        )
        response = operation.result(timeout=240)
    finally:
        channel.close()
    assert isinstance(response, speech_v1p1beta1.LongRunningRecognizeResponse)
    assert isinstance(operation.metadata, speech_v1p1beta1.LongRunningRecognizeMetadata)
    assert "Brooklyn" in text_of(response)


def test_a_job_recognizes_each_channel_on_its_own(google):
    content, _ = call("Thank you for calling the help desk.", "My printer stopped working.")
    operation = google.long_running_recognize(
        config=Config(
            language_code="en-US",
            audio_channel_count=2,
            enable_separate_recognition_per_channel=True,
        ),
        audio=speech_v1.RecognitionAudio(content=content),
        timeout=60,
    )
    results = operation.result(timeout=240).results
    assert [r.channel_tag for r in results] == sorted(r.channel_tag for r in results)
    texts = {
        tag: " ".join(r.alternatives[0].transcript for r in results if r.channel_tag == tag)
        for tag in (1, 2)
    }
    assert "help desk" in texts[1] and "printer" in texts[2]


def test_a_job_chooses_among_alternative_languages(google):
    operation = google.long_running_recognize(
        config=Config(language_code="en-US", alternative_language_codes=["es-ES"]),
        audio=speech_v1.RecognitionAudio(content=espeak(SPANISH, voice="es")),
        timeout=60,
    )
    response = operation.result(timeout=240)
    assert "Madrid" in text_of(response)
    assert {r.language_code for r in response.results} == {"es-ES"}


def test_a_silent_job_is_done_with_no_results(stack):
    done = wait_done(stack, submit(stack, content=silence(3.0), language_code="en").name)
    found = response_of(done)
    assert list(found.results) == []
    assert found.audio_duration.seconds == 3
