"""Words labelled with speakers and results split at speaker changes (services/core/speakers.py)."""

import pytest
from stt.v1 import stt_pb2

from services.core.convert import duration
from services.core.errors import InvalidConfig
from services.core.speakers import SpeakerBounds, check_bounds, label_results


def turn(start: float, end: float, label: str) -> stt_pb2.SpeakerTurn:
    return stt_pb2.SpeakerTurn(
        start_offset=duration(start), end_offset=duration(end), speaker_label=label
    )


def result(start: float, end: float, *words: tuple[str, float, float], confidence=0.9):
    alternative = stt_pb2.SpeechRecognitionAlternative(
        transcript=" ".join(w[0] for w in words), confidence=confidence
    )
    for text, word_start, word_end in words:
        alternative.words.add(
            word=text,
            start_offset=duration(word_start),
            end_offset=duration(word_end),
            confidence=0.5,
        )
    return stt_pb2.SpeechRecognitionResult(
        alternatives=[alternative],
        result_start_offset=duration(start),
        result_end_offset=duration(end),
        language_code="en",
        channel_tag=1,
    )


def seconds(value) -> float:
    return round(value.seconds + value.nanos / 1e9, 3)


def speakers(res) -> list[str]:
    return [w.speaker_label for w in res.alternatives[0].words]


def test_one_speaker_result_is_labelled_and_kept_whole():
    original = result(0.0, 2.0, ("hello", 0.1, 0.5), ("there", 0.6, 1.0))
    original.alternatives.add(transcript="hollow there", confidence=0.1)
    (labelled,) = label_results([original], [turn(0.0, 2.0, "1")])
    assert speakers(labelled) == ["1", "1"]
    assert len(labelled.alternatives) == 2
    assert labelled.alternatives[0].transcript == "hello there"
    assert not original.alternatives[0].words[0].speaker_label, "the input is not changed"


def test_a_result_is_split_where_the_speaker_changes():
    original = result(
        0.2,
        4.5,
        ("good", 0.3, 0.6),
        ("morning", 0.7, 1.2),
        ("hi", 2.0, 2.3),
        ("there", 2.4, 2.8),
        ("bye", 3.9, 4.3),
    )
    pieces = label_results(
        [original], [turn(0.0, 1.5, "1"), turn(1.8, 3.0, "2"), turn(3.5, 4.6, "1")]
    )
    assert [p.alternatives[0].transcript for p in pieces] == ["good morning", "hi there", "bye"]
    assert [speakers(p) for p in pieces] == [["1", "1"], ["2", "2"], ["1"]]
    bounds = [(seconds(p.result_start_offset), seconds(p.result_end_offset)) for p in pieces]
    # Outer bounds stay the result's; the cuts fall on the words' offsets.
    assert bounds == [(0.2, 1.2), (2.0, 2.8), (3.9, 4.5)]
    assert all(p.language_code == "en" and p.channel_tag == 1 for p in pieces)
    assert all(p.alternatives[0].confidence == pytest.approx(0.9) for p in pieces)
    assert seconds(pieces[1].alternatives[0].words[0].start_offset) == 2.0


def test_a_word_takes_the_turn_it_overlaps_most():
    # "across" overlaps turn 1 by 0.1 s and turn 2 by 0.3 s.
    original = result(0.0, 2.0, ("first", 0.0, 0.5), ("across", 0.9, 1.3))
    pieces = label_results([original], [turn(0.0, 1.0, "1"), turn(1.0, 2.0, "2")])
    assert [speakers(p) for p in pieces] == [["1"], ["2"]]


def test_a_word_in_a_pause_takes_the_nearest_turn():
    original = result(0.0, 6.0, ("early", 0.2, 0.4), ("late", 4.6, 4.8))
    pieces = label_results([original], [turn(1.0, 2.0, "1"), turn(5.0, 6.0, "2")])
    assert [speakers(p) for p in pieces] == [["1"], ["2"]]


def test_turns_in_any_order_and_several_results():
    first = result(0.0, 1.0, ("one", 0.1, 0.4))
    second = result(2.0, 3.0, ("two", 2.1, 2.5))
    labelled = label_results([first, second], [turn(2.0, 3.0, "2"), turn(0.0, 1.0, "1")])
    assert [speakers(r) for r in labelled] == [["1"], ["2"]]


def test_results_without_words_or_without_turns_come_back_as_they_are():
    bare = stt_pb2.SpeechRecognitionResult(
        alternatives=[stt_pb2.SpeechRecognitionAlternative(transcript="uh")]
    )
    worded = result(0.0, 1.0, ("one", 0.1, 0.4))
    assert label_results([bare], [turn(0.0, 1.0, "1")]) == [bare]
    assert label_results([worded], []) == [worded]
    assert label_results([], [turn(0.0, 1.0, "1")]) == []


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        (-1, 0, "min_speaker_count must be >= 0"),
        (0, -2, "max_speaker_count must be >= 0"),
        (3, 2, "min_speaker_count (3) is greater than max_speaker_count (2)"),
        (0, 21, "finds at most 20 speakers"),
    ],
)
def test_bad_bounds_are_invalid_config_naming_the_field(low, high, message):
    config = stt_pb2.SpeakerDiarizationConfig(
        enable_speaker_diarization=True, min_speaker_count=low, max_speaker_count=high
    )
    with pytest.raises(InvalidConfig, match=r"config\.diarization_config") as refused:
        check_bounds(config, most=20)
    assert message in refused.value.message


def test_good_bounds_are_read_as_given():
    config = stt_pb2.SpeakerDiarizationConfig(min_speaker_count=2, max_speaker_count=2)
    assert check_bounds(config, most=20) == SpeakerBounds(2, 2)
    assert check_bounds(stt_pb2.SpeakerDiarizationConfig(), most=20) == SpeakerBounds(0, 0)
