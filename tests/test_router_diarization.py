"""Recognize with speaker diarization through the router: the words of whisper_en labelled with
the diarization service's speakers and split where the speaker changes; what is refused and
how, when diarization is asked of the wrong place or cannot be served."""

import grpc
import pytest
from stt.v1 import stt_pb2

from services.diarization.embedded import EmbeddedBackend
from tests.support import clip, request, running_diarization, running_router, words
from tests.test_diarization import settings as diarization_settings
from tests.test_router import router_settings, unused_port
from tests.voices import conversation

THREE = "en/multispeaker_three_speakers_picovoice.wav"
# One word from each line of `tests.voices.LINES`, in order, found in no other line.
KEYWORDS = ("budget", "training", "customers", "smaller", "write", "office")


@pytest.fixture(scope="module")
def diarization():
    made = diarization_settings()
    with running_diarization(made, EmbeddedBackend(made)) as server:
        assert server.wait_loaded(), "the diarization service failed to load"
        yield server


@pytest.fixture(scope="module")
def router(whisper_server, diarization):
    made = router_settings("en*=whisper_en", whisper_en=whisper_server.target)
    made.routing.diarization = f"dns:///{diarization.target}"
    with running_router(made) as server:
        yield server


def with_speakers(content: bytes, low: int = 0, high: int = 0, **config):
    made = request(content, language_code="en", **config)
    made.config.diarization_config.CopyFrom(
        stt_pb2.SpeakerDiarizationConfig(
            enable_speaker_diarization=True, min_speaker_count=low, max_speaker_count=high
        )
    )
    return made


def labelled_words(response) -> list[tuple[str, str]]:
    return [(w.word, w.speaker_label) for r in response.results for w in r.alternatives[0].words]


def test_words_carry_speakers_and_results_split_at_changes(router):
    talk = conversation()
    response = router.stub.Recognize(with_speakers(talk.wav), timeout=300)
    assert response.service == "whisper_en"
    for result in response.results:
        top = result.alternatives[0]
        assert len({w.speaker_label for w in top.words}) == 1, "a result holds one speaker"
        assert words(top.transcript) == words(" ".join(w.word for w in top.words))
        assert top.words[0].HasField("start_offset"), "words have offsets for their speakers"
    # A word inside each line (one no other line has) is spoken by that line's voice.
    said = {words(w)[0]: s for w, s in labelled_words(response) if words(w)}
    assert [said[k] for k in KEYWORDS] == ["1", "2"] * (len(KEYWORDS) // 2)
    assert len(response.results) >= len(talk.lines), "results are split at speaker changes"


def test_three_real_speakers_each_get_their_own_label(router, audio_dir):
    response = router.stub.Recognize(with_speakers(clip(THREE)), timeout=300)
    labels = dict(labelled_words(response))
    said = {words(w)[0]: s for w, s in labels.items() if words(w)}
    # From the clip's README: speaker 1 "and so it begins", 2 "... crocodile ...",
    # 3 "ladies and gentlemen ... thank you".
    assert (said["begins"], said["crocodile"], said["ladies"]) == ("1", "2", "3")


def test_bad_bounds_are_refused_before_any_backend_is_called(router):
    with pytest.raises(grpc.RpcError) as refused:
        router.stub.Recognize(with_speakers(b"RIFF", low=4, high=2), timeout=10)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "min_speaker_count (4) is greater than max_speaker_count (2)" in refused.value.details()


def test_streaming_with_diarization_is_invalid_argument(router):
    config = stt_pb2.StreamingRecognitionConfig(
        config=stt_pb2.RecognitionConfig(
            language_code="en",
            diarization_config=stt_pb2.SpeakerDiarizationConfig(enable_speaker_diarization=True),
        )
    )
    stream = iter([stt_pb2.StreamingRecognizeRequest(streaming_config=config)])
    with pytest.raises(grpc.RpcError) as refused:
        list(router.stub.StreamingRecognize(stream, timeout=10))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "not supported on StreamingRecognize" in refused.value.details()


def test_a_language_service_asked_directly_says_the_router_serves_it(whisper_server):
    with pytest.raises(grpc.RpcError) as refused:
        whisper_server.stub.Recognize(with_speakers(clip(THREE)), timeout=10)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details()
    assert "config.diarization_config.enable_speaker_diarization" in details
    assert "served by the router" in details


def test_no_diarization_service_configured_is_failed_precondition(whisper_server):
    made = router_settings("en*=whisper_en", whisper_en=whisper_server.target)
    with running_router(made) as router, pytest.raises(grpc.RpcError) as refused:
        router.stub.Recognize(with_speakers(clip(THREE)), timeout=60)
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "ROUTER_DIARIZATION" in refused.value.details()


def test_an_unreachable_diarization_service_is_unavailable(whisper_server):
    made = router_settings("en*=whisper_en", whisper_en=whisper_server.target)
    made.routing.diarization = f"dns:///127.0.0.1:{unused_port()}"
    with running_router(made) as router:
        info = router.stub.GetServiceInfo(stt_pb2.GetServiceInfoRequest(), timeout=10)
        entry = next(b for b in info.backends if b.backend_name == "diarization")
        assert not entry.ready and entry.target == made.routing.diarization
        with pytest.raises(grpc.RpcError) as refused:
            router.stub.Recognize(with_speakers(clip(THREE)), timeout=60)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "needs the diarization service" in refused.value.details()
