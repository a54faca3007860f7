"""Jobs with speakers: the worker sends the whole job audio to the diarization service once,
through the router, so speaker labels hold across chunks, and labels the job's words with its
turns."""

import grpc
import pytest
from stt.v1 import stt_pb2

from services.diarization.embedded import EmbeddedBackend
from tests.jobs_support import (
    code_of,
    jobs_router,
    response_of,
    running_worker,
    submit,
    wait_done,
    worker_settings,
)
from tests.support import running_diarization, words
from tests.test_diarization import settings as diarization_settings
from tests.test_router_diarization import KEYWORDS
from tests.voices import conversation

SPEAKERS = stt_pb2.SpeakerDiarizationConfig(enable_speaker_diarization=True)


@pytest.fixture(scope="module")
def diarization():
    made = diarization_settings()
    with running_diarization(made, EmbeddedBackend(made)) as server:
        assert server.wait_loaded(), "the diarization service failed to load"
        yield server


def test_a_job_s_words_carry_speakers_that_hold_across_chunks(
    whisper_server, diarization, tmp_path
):
    talk = conversation()
    # Chunks of at most 10 s: the conversation spans several, each with both voices in turn.
    speakers_at = f"dns:///{diarization.target}"
    with jobs_router(whisper_server.target, data_dir=tmp_path, diarization=speakers_at) as router:
        worker = worker_settings(router.target, data_dir=tmp_path, chunk_seconds=10.0)
        with running_worker(worker):
            name = submit(router, talk.wav, language_code="en", diarization_config=SPEAKERS).name
            response = response_of(wait_done(router, name, 300))
    assert response.speaker_count == 2
    for result in response.results:
        top = result.alternatives[0]
        assert len({w.speaker_label for w in top.words}) == 1, "a result holds one speaker"
        assert top.words[0].HasField("start_offset")
    said: dict[str, str] = {}  # each word's speaker where it is first said
    for result in response.results:
        for word in result.alternatives[0].words:
            for heard in words(word.word):
                said.setdefault(heard, word.speaker_label)
    assert [said[k] for k in KEYWORDS] == ["1", "2"] * (len(KEYWORDS) // 2)
    assert len(response.results) >= len(talk.lines), "results are split at speaker changes"


def test_a_job_with_speakers_fails_on_a_router_without_diarization(whisper_server, tmp_path):
    talk = conversation(voices=(("en+m3", 35),))
    with (
        jobs_router(whisper_server.target, data_dir=tmp_path) as router,
        running_worker(worker_settings(router.target, data_dir=tmp_path)),
    ):
        name = submit(router, talk.wav, language_code="en", diarization_config=SPEAKERS).name
        failed = wait_done(router, name, 60)
    assert code_of(failed) is grpc.StatusCode.FAILED_PRECONDITION
    assert "ROUTER_DIARIZATION" in failed.error.message
