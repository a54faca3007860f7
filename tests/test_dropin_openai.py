"""The `openai` package, unchanged, against the router's HTTP port in front of a real
whisper_en: every response format (subtitles read with `srt` and `webvtt-py`), streamed
transcriptions, translations, the models list, and refusals as the client's own errors."""

import shutil
import subprocess

import openai
import pytest
import srt
import webvtt

from tests.conftest import DROPIN_MAX_REQUEST_BYTES, SPANS
from tests.dropin_support import JFK, JFK_SECONDS, PER_CLIP_WER, check_word_timings, reference
from tests.support import clip, metric, wer, words

# How far a word's middle may lie outside its subtitle cue: segment times come from
# Whisper's timestamp tokens, word times from its alignment, so they differ by a little.
CUE_SLACK_S = 0.5


@pytest.fixture(scope="module")
def client(dropin_router):
    base_url = f"{dropin_router.http}/v1"
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
        yield client


def jfk() -> tuple[str, bytes]:
    return ("jfk.flac", clip(JFK))


@pytest.fixture(scope="module")
def verbose(client, audio_dir):
    return client.audio.transcriptions.create(
        file=jfk(),
        model="whisper-1",
        language="en",
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )


def test_json_is_the_transcript(client, dropin_router, audio_dir):
    before = metric(dropin_router, "stt_router_requests_total", api="openai", code="OK")
    SPANS.clear()
    result = client.audio.transcriptions.create(file=jfk(), model="whisper-1", language="en")
    assert wer(reference(JFK), result.text) == 0.0, result.text
    assert result.usage.seconds == JFK_SECONDS
    after = metric(dropin_router, "stt_router_requests_total", api="openai", code="OK")
    assert after == before + 1
    spans = [s for s in SPANS.get_finished_spans() if s.attributes.get("stt.api") == "openai"]
    assert [s.name for s in spans] == ["POST /v1/audio/transcriptions"]


def test_text_is_the_transcript(client, audio_dir):
    text = client.audio.transcriptions.create(
        file=jfk(), model="whisper_en", language="en", response_format="text"
    )
    assert wer(reference(JFK), text) == 0.0, text


def test_verbose_json_has_words_and_segments(verbose):
    assert verbose.language == "en" and verbose.duration == pytest.approx(JFK_SECONDS, abs=0.01)
    assert wer(reference(JFK), verbose.text) == 0.0, verbose.text
    check_word_timings([(w.word, w.start, w.end) for w in verbose.words], JFK_SECONDS)
    assert " ".join(s.text for s in verbose.segments) == verbose.text
    for segment in verbose.segments:
        inside = [w for w in verbose.words if segment.start <= w.start and w.end <= segment.end]
        assert words(" ".join(w.word for w in inside)) == words(segment.text)
        assert segment.avg_logprob < 0


def cues_line_up_with_words(cues: list[tuple[float, float, str]], verbose) -> None:
    """The cues read as the transcript, in order, and each word of verbose_json lies in the
    cue that holds it."""
    assert wer(reference(JFK), " ".join(text for _, _, text in cues)) == 0.0, cues
    last_end = 0.0
    for start, end, text in cues:
        assert last_end <= start < end <= JFK_SECONDS
        last_end = end
        inside = [
            w.word
            for w in verbose.words
            if start - CUE_SLACK_S <= (w.start + w.end) / 2 <= end + CUE_SLACK_S
        ]
        assert set(words(text)) <= set(words(" ".join(inside))), (text, inside)


def test_srt_parses_and_lines_up_with_the_words(client, verbose, audio_dir):
    body = client.audio.transcriptions.create(
        file=jfk(), model="whisper-1", language="en", response_format="srt"
    )
    subtitles = list(srt.parse(body))
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    cues = [(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in subtitles]
    cues_line_up_with_words(cues, verbose)


def test_vtt_parses_and_lines_up_with_the_words(client, verbose, audio_dir):
    body = client.audio.transcriptions.create(
        file=jfk(), model="whisper-1", language="en", response_format="vtt"
    )
    captions = webvtt.from_string(body)
    cues = [
        (c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, c.text)
        for c in captions
    ]
    cues_line_up_with_words(cues, verbose)


def test_stream_sends_deltas_then_done(client, audio_dir):
    events = list(
        client.audio.transcriptions.create(
            file=jfk(), model="whisper-1", language="en", stream=True
        )
    )
    kinds = [event.type for event in events]
    assert kinds[-1] == "transcript.text.done"
    assert kinds[:-1] == ["transcript.text.delta"] * (len(kinds) - 1) and len(kinds) >= 2
    deltas = "".join(event.delta for event in events[:-1])
    assert events[-1].text == deltas
    assert wer(reference(JFK), deltas) <= PER_CLIP_WER, deltas


def spanish(text: str) -> bytes:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    command = ["espeak-ng", "-v", "es", "-s", "130", "--stdout", text]
    return subprocess.run(command, check=True, capture_output=True).stdout


@pytest.mark.filterwarnings(
    "ignore:deprecated:DeprecationWarning"
)  # the client's note on whisper-1
def test_translation_is_english(client):
    text = "Buenos días. Me llamo María y vivo en Madrid. Hoy hace mucho calor."
    speech = ("saludo.wav", spanish(text))
    heard = client.audio.transcriptions.create(file=speech, model="whisper-1")
    assert "buenos" in words(heard.text), heard.text
    translated = client.audio.translations.create(file=speech, model="whisper-1")
    english = " ".join(words(translated.text))
    assert "good morning" in english and "madrid" in english, translated.text
    assert "buenos" not in english


def test_models_are_whisper_1_and_the_backends(client):
    assert [m.id for m in client.models.list()] == ["whisper-1", "whisper_en"]
    assert client.models.retrieve("whisper_en").owned_by == "stt-suite"


def test_an_unknown_model_is_404_in_openais_shape(client, audio_dir):
    with pytest.raises(openai.NotFoundError) as refused:
        client.audio.transcriptions.create(file=jfk(), model="gpt-4o-transcribe")
    assert refused.value.code == "model_not_found"
    assert "gpt-4o-transcribe" in refused.value.message
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o-transcribe")


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"file": ("noise.wav", b"this is not audio" * 100)}, None),
        ({"language": "fr"}, "language"),
        ({"include": ["logprobs"]}, "include[]"),
        (
            {"response_format": "json", "timestamp_granularities": ["word"]},
            "timestamp_granularities[]",
        ),
        ({"response_format": "diarized_json"}, "response_format"),
        ({"temperature": 1.5}, "temperature"),
    ],
)
def test_bad_requests_are_400(client, audio_dir, options, param):
    request = {"file": jfk(), "model": "whisper-1", **options}
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.transcriptions.create(**request)
    assert refused.value.param == param
    assert refused.value.type == "invalid_request_error"


def test_a_file_over_the_limit_is_413(client):
    too_big = ("big.wav", b"\0" * (DROPIN_MAX_REQUEST_BYTES + 1))
    with pytest.raises(openai.APIStatusError) as refused:
        client.audio.transcriptions.create(file=too_big, model="whisper-1")
    assert refused.value.status_code == 413
    assert refused.value.code == "file_too_large"
