"""The embedded diarization's parts on made-up data: clustering within bounds, windows to
turns with smoothing, and pyannote.audio's overlapping segments made exclusive."""

import numpy as np

from services.core.speakers import SpeakerBounds
from services.core.vad import Span
from services.diarization.clustering import cluster
from services.diarization.pipeline import exclusive_turns
from services.diarization.turns import to_turns
from services.diarization.windows import Windows

RATE = 16_000


def voices(counts: list[int], spread: float = 0.05, seed: int = 0) -> np.ndarray:
    """Unit vectors scattered around one random direction per speaker."""
    rng = np.random.default_rng(seed)
    rows = []
    for count in counts:
        centre = rng.standard_normal(64)
        rows.append(centre + spread * np.linalg.norm(centre) * rng.standard_normal((count, 64)))
    made = np.concatenate(rows)
    return made / np.linalg.norm(made, axis=1, keepdims=True)


def test_the_count_is_estimated_then_held_within_the_bounds():
    three = voices([10, 10, 10])
    assert len(set(cluster(three, SpeakerBounds(1, 8), 0.4, 1000))) == 3
    assert len(set(cluster(three, SpeakerBounds(1, 2), 0.4, 1000))) == 2
    assert len(set(cluster(three, SpeakerBounds(4, 8), 0.4, 1000))) == 4
    assert len(set(cluster(three, SpeakerBounds(1, 1), 0.4, 1000))) == 1
    assert len(set(cluster(voices([12]), SpeakerBounds(1, 8), 0.4, 1000))) == 1


def test_long_audio_clusters_a_subsample_and_assigns_the_rest():
    many = voices([300, 300])
    labels = cluster(many, SpeakerBounds(1, 8), 0.4, max_windows=50)
    assert len(set(labels)) == 2
    assert len(set(labels[:300])) == 1 and len(set(labels[300:])) == 1


def test_windows_become_turns_and_a_brief_change_is_smoothed_away():
    # One 6 s region: windows of 1.6 s every 0.4 s; speaker 0 until 3 s, then 1, with one
    # stray window in the middle of the first speaker.
    starts = np.arange(0, 4.5, 0.4)
    labels = np.array([0 if s + 0.8 < 3 else 1 for s in starts])
    labels[2] = 1
    windows = Windows(
        (starts * RATE).astype(int),
        ((starts + 1.6).clip(max=6) * RATE).astype(int),
        np.zeros((len(starts), 4)),
    )
    turns = to_turns(windows, labels, [Span(0, 6 * RATE)], frame_s=0.1, min_turn_s=1.0)
    assert [t.speaker for t in turns] == [1, 2]
    assert turns[0].start == 0 and turns[-1].end == 6
    assert abs(turns[0].end - 3.0) <= 0.3
    assert turns[0].end == turns[1].start


def test_no_windows_no_turns():
    empty = Windows(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)))
    assert to_turns(empty, np.zeros(0, int), [], 0.1, 1.0) == ()


def test_overlapping_segments_become_exclusive_turns():
    segments = [(0.0, 5.0, "SPEAKER_01"), (4.0, 8.0, "SPEAKER_00"), (5.5, 6.0, "SPEAKER_01")]
    turns = exclusive_turns(segments)
    assert [(t.start, t.end, t.speaker) for t in turns] == [(0.0, 5.0, 1), (5.0, 8.0, 2)]
