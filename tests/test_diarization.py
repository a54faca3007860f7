"""The diarization service on loopback: who spoke when in two synthetic voices and in real
meeting audio, scored with diarization error rate; speaker-count bounds; refusals that leave
the server serving; health through loading and draining; metrics.

DER bound: the two voices' turns are 3.5-5 s long. With a 0.25 s collar on each side of a
boundary, 10% allows the turn edges to miss by half a second each and some padding
counted as speech, but not one whole turn given to the wrong speaker (about 15% of the
speech), so a bound of 10% tells working diarization from broken.
"""

import itertools
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stt.v1 import stt_pb2

from services.core.health import State
from services.diarization.embedded import EmbeddedBackend
from services.diarization.settings import DiarizationSettings
from tests.support import clip, encode, http_get, metric, running_diarization, tone
from tests.voices import conversation, der

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DER_BOUND = 0.10
AMI = "en/multispeaker_ami_ES2011a_headset0_40s-46s.wav"
# The AMI clip's turns, from the shared clips' README.
AMI_TURNS = ((1.46, 2.82, "A"), (3.36, 4.36, "B"))


def settings(**overrides) -> DiarizationSettings:
    return DiarizationSettings(**{"grpc_port": 0, "http_port": 0, "cpu_threads": 2, **overrides})


@pytest.fixture(scope="module")
def server():
    made = settings()
    with running_diarization(made, EmbeddedBackend(made)) as running:
        assert running.wait_loaded(), "the diarization service failed to load"
        yield running


@pytest.fixture(scope="module")
def two_voices():
    return conversation()


def diarize(server, content: bytes, low: int = 0, high: int = 0) -> stt_pb2.DiarizeResponse:
    request = stt_pb2.DiarizeRequest(
        config=stt_pb2.RecognitionConfig(
            diarization_config=stt_pb2.SpeakerDiarizationConfig(
                enable_speaker_diarization=True, min_speaker_count=low, max_speaker_count=high
            )
        ),
        audio=stt_pb2.RecognitionAudio(content=content),
    )
    return server.diarize.Diarize(request, timeout=120)


def turns(response: stt_pb2.DiarizeResponse) -> list[tuple[float, float, str]]:
    return [
        (
            t.start_offset.ToTimedelta().total_seconds(),
            t.end_offset.ToTimedelta().total_seconds(),
            t.speaker_label,
        )
        for t in response.turns
    ]


def test_two_voices_are_told_apart(server, two_voices):
    response = diarize(server, two_voices.wav)
    found = turns(response)
    assert response.speaker_count == 2
    assert {label for _, _, label in found} == {"1", "2"}
    assert found[0][2] == "1", "speakers are numbered by first appearance"
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(found)), "turns overlap"
    assert der(two_voices.turns, found) < DER_BOUND
    assert response.service == "diarization" and response.model.startswith("resemblyzer-")
    assert response.audio_duration.ToTimedelta().total_seconds() == pytest.approx(
        two_voices.seconds, abs=0.05
    )


@pytest.mark.parametrize(("low", "high", "expected"), [(1, 1, {1}), (3, 3, {3}), (0, 1, {1})])
def test_speaker_count_bounds_are_honoured(server, two_voices, low, high, expected):
    assert diarize(server, two_voices.wav, low, high).speaker_count in expected


def test_a_minimum_above_the_estimate_is_honoured(server, two_voices):
    assert diarize(server, two_voices.wav, low=3).speaker_count >= 3


def test_real_meeting_audio_with_two_speakers(server, audio_dir):
    response = diarize(server, clip(AMI), low=2, high=2)
    assert response.speaker_count == 2
    assert der(AMI_TURNS, turns(response)) < 0.25


def test_three_speakers_are_found_in_real_speech(server, audio_dir):
    response = diarize(server, clip("en/multispeaker_three_speakers_picovoice.wav"))
    assert response.speaker_count == 3
    assert next(t[2] for t in turns(response)) == "1"


@pytest.mark.parametrize(
    ("content", "low", "high", "message"),
    [
        (b"not audio at all", 0, 0, "could not be decoded"),
        (b"", 0, 0, "audio is empty"),
        (None, 3, 2, "min_speaker_count (3) is greater than max_speaker_count (2)"),
        (None, 0, 21, "finds at most 20 speakers"),
        (None, -1, 0, "min_speaker_count must be >= 0"),
    ],
)
def test_bad_requests_are_invalid_argument_and_the_server_keeps_serving(
    server, two_voices, content, low, high, message
):
    with pytest.raises(grpc.RpcError) as refused:
        diarize(server, two_voices.wav if content is None else content, low, high)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in refused.value.details()
    assert diarize(server, two_voices.wav, 2, 2).speaker_count == 2


def test_audio_by_uri_is_refused(server):
    request = stt_pb2.DiarizeRequest(audio=stt_pb2.RecognitionAudio(uri="file:///tmp/a.wav"))
    with pytest.raises(grpc.RpcError) as refused:
        server.diarize.Diarize(request, timeout=10)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "audio.content" in refused.value.details()


def test_audio_without_speech_has_no_turns(server):
    response = diarize(server, encode(tone(2.0), 16000, "wav", "pcm_s16le"))
    assert (list(response.turns), response.speaker_count) == ([], 0)


def test_metrics_count_requests_and_speakers(server, two_voices):
    before = metric(server, "stt_diarization_speakers_count")
    ok_before = metric(server, "stt_requests_total", method="Diarize", code="OK")
    diarize(server, two_voices.wav, 2, 2)
    assert metric(server, "stt_diarization_speakers_count") == before + 1
    assert metric(server, "stt_requests_total", method="Diarize", code="OK") == ok_before + 1
    assert metric(server, "stt_audio_seconds_total", service="diarization") > 0


class HeldWarmUp(EmbeddedBackend):
    """The real backend, whose warm-up waits until the test lets it go."""

    def __init__(self, made):
        super().__init__(made)
        self.go = threading.Event()

    def warm_up(self) -> None:
        assert self.go.wait(60), "the test never released the warm-up"
        super().warm_up()


def health(server, name: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(server.channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status


def test_health_follows_loading_serving_and_draining(two_voices):
    made = settings()
    backend = HeldWarmUp(made)
    with running_diarization(made, backend) as server:
        assert health(server) == health(server, "stt.v1.Diarization") == NOT_SERVING
        assert http_get(server, "/readyz") == (503, "starting\n")
        with pytest.raises(grpc.RpcError) as early:
            diarize(server, two_voices.wav)
        assert early.value.code() is grpc.StatusCode.UNAVAILABLE
        backend.go.set()
        assert server.wait_loaded()
        assert health(server) == health(server, "stt.v1.Diarization") == SERVING
        assert http_get(server, "/readyz") == (200, "serving\n")
        server.call(server.server.lifecycle.set(State.DRAINING))  # as drain() begins
        assert health(server, "stt.v1.Diarization") == NOT_SERVING
        with pytest.raises(grpc.RpcError) as draining:
            diarize(server, two_voices.wav)
        assert draining.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_pyannote_pipeline_without_pyannote_audio_never_turns_ready():
    try:
        import pyannote.audio  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyannote.audio is installed here")
    from services.diarization.pipeline import PyannoteBackend

    made = settings(model="pyannote/speaker-diarization-3.1")
    with pytest.raises(RuntimeError, match=r"pip install 'stt-suite\[pyannote\]'"):
        PyannoteBackend(made).load()
    with running_diarization(made, PyannoteBackend(made)) as server:
        assert not server.wait_loaded()
        assert health(server, "stt.v1.Diarization") == NOT_SERVING
        assert http_get(server, "/healthz") == (503, "failed\n")


def test_fetch_names_the_packaged_encoder_weights():
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "fetch", "diarization"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    weights = Path(done.stdout.strip())
    assert weights.name == "pretrained.pt" and weights.stat().st_size > 1_000_000
