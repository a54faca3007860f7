"""Benchmark of the diarization service's embedded default, written to its own section of
docs/benchmarks.md: real-time factor and diarization error rate (pyannote.metrics) on
two-voice audio made with espeak-ng and on the shared multi-speaker clips.

The whole path a Diarize request takes is timed (decode, VAD, embeddings, clustering,
turns), in process: the gRPC hop adds milliseconds. DER is given with a 0.25 s collar each
side of every reference boundary (as in the NIST RT evaluations) and with none.

    python -m bench.diarization     # from the repository root; a few minutes on 2 cores
"""

from __future__ import annotations

import csv
import os
import resource
import statistics
import time

from bench import docs, machine
from services.core.audio import AudioLimits, AudioSpec
from services.core.cancellation import Cancellation
from services.core.metrics import ServiceMetrics
from services.core.speakers import SpeakerBounds
from services.core.vad import VadSettings, VoiceActivityDetector
from services.diarization.diarizer import DiarizationJob, Diarizer
from services.diarization.embedded import EmbeddedBackend
from services.diarization.servicer import resolved
from services.diarization.settings import DiarizationSettings
from tests.support import AUDIO_DIR
from tests.voices import LINES, conversation, der

AMI = "en/multispeaker_ami_ES2011a_headset0_40s-46s.wav"
THREE = "en/multispeaker_three_speakers_picovoice.wav"
LONG = "en/long_concat_en.flac"
# The long clip's parts by speaker (its segments.tsv names each part's source): the three
# LJ Speech parts are one reader; the AMI part holds two speakers at known times (from the
# README), the Picovoice conversation three whose times are not published, so that part is
# left out of scoring.
LONG_SAME_SPEAKER = {"LJ002-0020": "LJ", "LJ002-0035": "LJ", "LJ050-0131": "LJ"}
AMI_TURNS = ((1.46, 2.82, "A"), (3.36, 4.36, "B"))
RUNS = 3


def main() -> None:
    load_at_start = machine.load_average()
    settings = DiarizationSettings(cpu_threads=2)
    backend = EmbeddedBackend(settings)
    vad = VoiceActivityDetector(
        VadSettings(settings.vad_threshold, settings.vad_min_silence_ms, settings.vad_speech_pad_ms)
    )
    started = time.perf_counter()
    backend.load()
    vad.load()
    loaded = time.perf_counter()
    backend.warm_up()
    warm = time.perf_counter()
    diarizer = Diarizer(backend, vad, AudioLimits(1 << 30, 4 * 3600), ServiceMetrics("bench"))
    rows = [row(diarizer, settings, *case) for case in cases()]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    costs = (loaded - started, warm - loaded, rss_mb)
    docs.write_section("diarization", render(rows, costs, load_at_start))


def cases():
    """(name, audio bytes, reference turns or None, scored extent or None, bounds, truth)."""
    talk = conversation()
    yield ("two espeak voices, 6 turns", talk.wav, talk.turns, None, SpeakerBounds(), 2)
    yield (
        "two espeak voices, 2 speakers given",
        talk.wav,
        talk.turns,
        None,
        SpeakerBounds(2, 2),
        2,
    )
    long_talk = conversation(LINES * 3)
    yield ("two espeak voices, 18 turns", long_talk.wav, long_talk.turns, None, SpeakerBounds(), 2)
    if not (AUDIO_DIR / "MANIFEST.tsv").is_file():
        return
    ami = (AUDIO_DIR / AMI).read_bytes()
    yield ("AMI meeting, 6 s", ami, AMI_TURNS, None, SpeakerBounds(), 2)
    yield ("AMI meeting, 2 speakers given", ami, AMI_TURNS, None, SpeakerBounds(2, 2), 2)
    yield (
        "Picovoice, three speakers, 20 s",
        (AUDIO_DIR / THREE).read_bytes(),
        None,
        None,
        SpeakerBounds(),
        3,
    )
    reference, skip = long_reference()
    long_clip = (AUDIO_DIR / LONG).read_bytes()
    for bounds in (SpeakerBounds(), SpeakerBounds(1, 15)):
        name = "13 clips joined, 127 s"
        yield (name, long_clip, reference, skip, bounds, "14 (11 scored)")


def long_reference() -> tuple[list[tuple[float, float, str]], tuple[float, float]]:
    table = (AUDIO_DIR / "en/long_concat_en.segments.tsv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(table.splitlines(), delimiter="\t"))
    turns, skip = [], (0.0, 0.0)
    for row in rows:
        start, end, source = float(row["start"]), float(row["end"]), row["source"]
        if "diarization_test" in source:
            skip = (start, end)
            continue
        if "ES2011a" in source:
            turns += [(start + a, start + b, f"AMI-{who}") for a, b, who in AMI_TURNS]
            continue
        name = source.rsplit("/", 1)[-1].split(".")[0]
        speaker = next((v for k, v in LONG_SAME_SPEAKER.items() if k in source), name)
        turns.append((start, end, speaker))
    return turns, skip


def row(diarizer, settings, name, content, reference, skip, bounds, truth) -> list[str]:
    job = DiarizationJob(content, AudioSpec(), resolved(bounds, settings))
    times, cpu_times = [], []
    for _ in range(RUNS):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = diarizer.run(job, Cancellation())
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    found = [(t.start, t.end, str(t.speaker)) for t in result.diarization.turns]
    seconds = result.audio_seconds
    scored = _scored(reference, skip)
    errors = ["", ""]
    if scored:
        errors = [
            f"{100 * der(scored, _outside(found, skip), collar):.1f}%" for collar in (0.5, 0.0)
        ]
    used = resolved(bounds, settings)
    shown = f"{used.min_count}-{used.max_count}"
    if bounds == SpeakerBounds():
        shown += " (default)"
    return [
        name,
        f"{seconds:.1f}",
        shown,
        f"{result.diarization.speaker_count} of {truth}",
        f"{statistics.median(times) / seconds:.3f}",
        f"{statistics.median(cpu_times) / seconds:.3f}",
        *errors,
    ]


def _scored(reference, skip):
    return _outside(reference, skip) if reference else None


def _outside(turns, skip):
    """Turns with the unscored stretch `skip` cut out of them."""
    if not skip or skip == (0.0, 0.0):
        return turns
    kept = []
    for start, end, speaker in turns:
        if end <= skip[0] or start >= skip[1]:
            kept.append((start, end, speaker))
            continue
        if start < skip[0]:
            kept.append((start, skip[0], speaker))
        if end > skip[1]:
            kept.append((skip[1], end, speaker))
    return kept


def render(rows: list[list[str]], costs: tuple[float, float, float], load_at_start: float) -> str:
    load_s, warm_s, rss_mb = costs
    described = machine.describe(load_at_start)
    header = [
        "audio",
        "seconds",
        "speaker bounds",
        "speakers found",
        "RTF (wall)",
        "CPU s per audio s",
        "DER (0.25 s collar)",
        "DER (no collar)",
    ]
    return "\n".join(
        [
            "## Diarization: the embedded default (Resemblyzer + scikit-learn)",
            "",
            f"`python -m bench.diarization` on {described['CPU']}, {described['Cores']} cores, "
            f"no GPU, {described['Date']}; load average at start and end "
            f"{described['Load average (1 min), start / end']}. RTF is the median of {RUNS} runs "
            "of the whole Diarize path (decode, VAD, embeddings, clustering, turns) over "
            "the audio's duration; CPU seconds (all threads) per audio second hardly count "
            "time lost to other work on the machine, so they stay comparable when it is busy. "
            "DER is pyannote.metrics' diarization error rate (missed speech, false alarm and "
            "speaker confusion over reference speech).",
            "",
            docs.table(header, rows),
            *busy_note(load_at_start),
            "",
            f"Loading the encoder took {load_s:.1f} s, the warm-up {warm_s:.1f} s (librosa "
            f"compiles its kernels on first use); the process peaked at {rss_mb:.0f} MB.",
            "",
            "References: the espeak-ng conversations' turns are exact (first to last sample "
            "above -40 dBFS of each line). The AMI clip's two turns are the README's. The "
            "Picovoice clip's turn times are not published: only its speaker count is shown. "
            "The 127 s clip's reference is coarse: each part's whole span (its leading and "
            "trailing silence too) for its source's speaker, the three LJ Speech parts one "
            "speaker, the AMI part's two turns at their README times, and the Picovoice "
            "three-speaker part left out of scoring; with 14 speakers there, the default "
            "bound of 8 speakers caps the estimate.",
        ]
    )


def busy_note(load_at_start: float) -> list[str]:
    """A warning under the table when other work kept the machine's cores busy."""
    if load_at_start <= (os.cpu_count() or 1):
        return []
    return [
        "",
        "The machine was shared and busy (a load average above its core count): wall-clock "
        "figures are inflated and vary from run to run; CPU seconds vary less, but not "
        "nothing, as cores shared with other work run slower.",
    ]


if __name__ == "__main__":
    main()
