"""Whisper on a window fitted to the audio (streaming decodes): the encoder sees the audio and
its margin rather than 30 s, the words stay those of the full window, and a decode that
loops is done again."""

from dataclasses import replace
from types import SimpleNamespace

import pytest
from faster_whisper import WhisperModel

from services.core.audio import AudioLimits, AudioSpec, decode
from services.core.backend import SAMPLE_RATE, DecodeOptions
from services.core.cancellation import Cancellation
from services.whisper_en import window
from services.whisper_en.backend import WhisperBackend
from tests.conftest import whisper_settings
from tests.support import clip, wer


def test_the_window_holds_the_audio_and_its_margin_and_is_never_the_full_one():
    assert window.fitted_frames(2 * SAMPLE_RATE) == 800  # the 8-s floor
    assert window.fitted_frames(10 * SAMPLE_RATE) == 1302  # 1000 + 1 + 300, made even
    assert window.fitted_frames(27 * SAMPLE_RATE) is None  # 3001 frames: the full window


def segment(text: str, tokens: int, ratio: float = 1.2):
    return SimpleNamespace(text=text, tokens=list(range(tokens)), compression_ratio=ratio)


def test_a_loop_is_told_by_words_tokens_or_compression():
    speech = segment("ask not what your country can do for you", 12)
    assert not window.looped([speech], 3.0, window.token_budget(3.0))
    assert window.looped([segment("and so " * 12, 30)], 3.0, 100)  # 24 words in 3 s
    assert window.looped([speech], 3.0, 12)  # cut off by its budget
    assert window.looped([segment("the dreams built", 5, ratio=3.1)], 3.0, 100)


@pytest.fixture(scope="module")
def backend(whisper_model):
    model = WhisperBackend(whisper_settings(whisper_model))
    model.load()
    return model


@pytest.fixture
def encoded(monkeypatch) -> list[int]:
    """The number of frames each encoder call saw."""
    frames: list[int] = []
    encode = WhisperModel.encode

    def spy(self, features):
        frames.append(features.shape[-1])
        return encode(self, features)

    monkeypatch.setattr(WhisperModel, "encode", spy)
    return frames


def jfk_start(audio_dir, seconds: float, path: str = "en/jfk.flac"):
    samples = decode(clip(path), AudioSpec(), AudioLimits(10**9, 10**4)).samples
    return samples[: int(seconds * SAMPLE_RATE)]


def test_a_short_window_gives_the_words_of_the_full_one(backend, encoded, audio_dir):
    audio = jfk_start(audio_dir, 11.0)
    options = DecodeOptions(language="en", beam_size=1, word_timestamps=True)
    full = backend.transcribe(audio, options, Cancellation())
    short = backend.transcribe(audio, replace(options, short_window=True), Cancellation())
    assert encoded == [3000, window.fitted_frames(len(audio))]
    text = " ".join(s.text for s in short.segments)
    assert wer(" ".join(s.text for s in full.segments), text) < 0.1, text
    words = [w for s in short.segments for w in s.words]
    assert words and words[0].start < 1.0 and 9.0 < words[-1].end <= 11.0


def test_a_looping_decode_drops_its_prefix_then_takes_the_full_window(
    backend, encoded, audio_dir, monkeypatch
):
    monkeypatch.setattr(window, "looped", lambda *args: True)
    audio = jfk_start(audio_dir, 4.0)
    options = DecodeOptions(language="en", beam_size=1, short_window=True, prefix="And so my")
    text = " ".join(s.text for s in backend.transcribe(audio, options, Cancellation()).segments)
    assert encoded == [800, 800, 3000]  # with the prefix, without it, then the full window
    assert "fellow" in text.lower()


def test_a_model_that_refuses_a_fitted_window_decodes_full_ones_from_then_on(
    whisper_model, audio_dir, monkeypatch
):
    backend = WhisperBackend(whisper_settings(whisper_model))
    backend.load()
    encode, refused = WhisperModel.encode, []

    def full_windows_only(self, features):
        if features.shape[-1] != window.FULL_WINDOW_FRAMES:
            refused.append(features.shape[-1])
            raise RuntimeError("forced: this build encodes 3000 frames only")
        return encode(self, features)

    monkeypatch.setattr(WhisperModel, "encode", full_windows_only)
    options = DecodeOptions(language="en", beam_size=1, short_window=True)
    for _ in range(2):
        transcript = backend.transcribe(jfk_start(audio_dir, 4.0), options, Cancellation())
        assert "fellow" in " ".join(s.text for s in transcript.segments).lower()
    assert refused == [800]  # tried once; the second decode went to the full window at once


def test_audio_too_long_for_a_fitted_window_keeps_its_prefix(
    backend, encoded, audio_dir, monkeypatch
):
    prefixes = []
    transcribe = WhisperModel.transcribe

    def spy(self, audio, **options):
        prefixes.append(options.get("prefix"))
        return transcribe(self, audio, **options)

    monkeypatch.setattr(WhisperModel, "transcribe", spy)
    audio = jfk_start(audio_dir, 28.0, "en/long_concat_en.flac")
    options = DecodeOptions(language="en", beam_size=1, short_window=True, prefix="And so my")
    backend.transcribe(audio, options, Cancellation())
    assert (encoded, prefixes) == ([3000], ["And so my"])  # the full window, prefix and all
