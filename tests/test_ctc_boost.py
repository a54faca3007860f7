"""Phrase boosting in the CTC services: the backend decodes with the hotword beam search
(`services.ctc.hotwords`) where a request boosts phrases, and greedily otherwise. On the
backend, with log-probabilities made to order (a word heard a little more as another); and
through a tiny model's service over gRPC, where a boost is served and an unwritable phrase
refused by name."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
import numpy as np
import pytest
from stt.v1 import stt_pb2

from services.core.backend import SAMPLE_RATE, DecodeOptions
from services.core.cancellation import Cancellation
from services.core.errors import InvalidConfig
from services.ctc.backend import CtcBackend, _hotword_decoder
from services.ctc.text import TextRules
from services.ctc.vocabulary import Vocabulary
from tests.ctc_support import TINY_CASES, model_dir, settings
from tests.support import clip, request, running
from tests.test_ctc_hotwords import FRAME_S, KWAME, VOCAB, log_probs, spoken


class MadeToOrder(CtcBackend):
    """The CTC backend over given log-probabilities instead of a model's."""

    def __init__(self, frames: np.ndarray, vocab: Vocabulary = VOCAB):
        self._settings = SimpleNamespace(language="ha")
        self._vocab = vocab
        self._hotwords = _hotword_decoder(vocab, TextRules())
        self._reader = SimpleNamespace(geometry=SimpleNamespace(frame_seconds=FRAME_S))
        self._frames = frames

    def log_probs(self, audio, cancellation):
        return self._frames


def text(backend: CtcBackend, options: DecodeOptions) -> str:
    audio = np.zeros(int(len(backend._frames) * FRAME_S * SAMPLE_RATE), dtype=np.float32)
    found = backend.transcribe(audio, options, Cancellation())
    return " ".join(s.text for s in found.segments)


def test_a_boosted_word_is_decoded_where_the_greedy_path_misses_it():
    frames = log_probs([{"_": 0.9}, *spoken("HELLO"), {"|": 0.9}, *KWAME, {"_": 0.9}])
    backend = MadeToOrder(frames)
    assert backend.boosts
    assert text(backend, DecodeOptions(language="ha")) == "HELLO KWAMO"
    boosted = DecodeOptions(language="ha", boosted=("Kwame",), boost=10.0)
    backend.check(boosted)
    assert text(backend, boosted) == "HELLO KWAME"
    # Google's class tokens name no words: nothing to boost, the greedy path stands.
    classes = DecodeOptions(language="ha", boosted=("$TIME",), boost=10.0)
    assert text(backend, classes) == "HELLO KWAMO"


def test_a_vocabulary_of_word_pieces_refuses_boosts_by_name():
    pieces = Vocabulary(("", "|", "he", "llo", "kw", "ame"), blank=0, delimiter=1)
    backend = MadeToOrder(log_probs([{"_": 0.9}]), pieces)
    assert not backend.boosts
    with pytest.raises(InvalidConfig, match="speech_contexts boost: this model's vocabulary"):
        backend.check(DecodeOptions(boosted=("kwame",), boost=5.0))


@pytest.fixture(scope="module")
def tiny_service(tiny_models, audio_dir):
    case = TINY_CASES[0]
    config = settings(case, model_dir(case, tiny_models))
    with running(case.service, config, case.module.Backend(config)) as server:
        assert server.wait_loaded(), f"{case.service} failed to load"
        yield case, server


def test_a_tiny_model_s_service_serves_a_boost_and_refuses_what_it_cannot_spell(tiny_service):
    case, server = tiny_service
    asked = request(clip(case.clip), language_code=case.language)
    asked.config.speech_contexts.add(phrases=["sannu da zuwa"], boost=8)
    response = server.stub.Recognize(asked, timeout=120)
    assert response.service == case.service and response.audio_duration.seconds > 0
    unwritable = stt_pb2.RecognizeRequest()
    unwritable.CopyFrom(asked)
    unwritable.config.speech_contexts[0].phrases[:] = ["qqq 42"]
    with pytest.raises(grpc.RpcError) as refused:
        server.stub.Recognize(unwritable, timeout=60)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
