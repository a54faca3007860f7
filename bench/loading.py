"""`python -m bench.loading`: does CTranslate2 decode faster when its model was loaded on a
thread that has since ended (as `stt serve` loads it) than when loaded on the main thread (as
faster-whisper's README does), and with one model replica than with two?

What tells them apart is how many OpenMP threads the process holds: CTranslate2's GNU libgomp
gives every thread that runs a parallel region a team of `cpu_threads`, and once the teams
together hold more threads than the process has cores, libgomp stops its threads spinning
between regions (its "throttled" spin count), so each region waits on a sleeping thread's
wake-up. A loading thread that lives on keeps its team; a second replica has a team of its own.

Each way of loading runs in a process of its own (`--child WAY`), the ways taking turns, so
that nothing else in one process tells them apart. Every child loads the bundled Whisper base
(int8, CPU, `cpu_threads` as given), decodes once untimed, then times `--reps` decodes of each
clip (beam 5, language given, no VAD) and prints them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.clips import JFK, LONG_SOURCE, MEDIUM_S, RATE, decode
from bench.machine import load_average
from bench.progress import note
from bench.stats import median
from services.core.priority import model_threads
from tests.support import AUDIO_DIR

WAYS = {
    "main": "on the main thread, which goes on to decode (faster-whisper's README)",
    "ended": "on a thread that ends once the model is loaded",
    "ended-nice": "on a thread that ends, 2 nice levels down (`stt serve`'s loader)",
    "ended-2-replicas": "on a thread that ends, two replicas (`num_workers=2`)",
    "ended-2-replicas-1-thread": "on a thread that ends, two replicas of one thread each",
}


def load(way: str, model_dir: str, cpu_threads: int):
    from faster_whisper import WhisperModel

    workers = 2 if "2-replicas" in way else 1
    threads = 1 if way.endswith("1-thread") else cpu_threads

    def make():
        return WhisperModel(
            model_dir,
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            num_workers=workers,
        )

    if way == "main":
        return make()
    pool = model_threads(1, "load", 2) if way == "ended-nice" else ThreadPoolExecutor(1)
    try:
        return pool.submit(make).result()
    finally:
        pool.shutdown(wait=True)


def child(way: str, model_dir: str, cpu_threads: int, reps: int) -> dict:
    clips = {
        "jfk 11 s": decode(AUDIO_DIR / JFK),
        f"concat {MEDIUM_S:.0f} s": decode(AUDIO_DIR / LONG_SOURCE)[: int(MEDIUM_S * RATE)],
    }
    model = load(way, model_dir, cpu_threads)

    def once(audio) -> float:
        started = time.perf_counter()
        segments, _ = model.transcribe(audio, beam_size=5, language="en")
        list(segments)
        return time.perf_counter() - started

    once(clips["jfk 11 s"])
    return {name: [once(audio) for _ in range(reps)] for name, audio in clips.items()}


def measure(
    model_dir: str, cpu_threads: int, rounds: int, reps: int, ways: tuple[str, ...] = tuple(WAYS)
) -> tuple[dict, float]:
    """Each way's decode times by clip, its children taking turns; the highest load seen."""
    times: dict[str, dict[str, list[float]]] = {way: {} for way in ways}
    loads = []
    for round_ in range(rounds):
        order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
        for way in order:
            loads.append(load_average())
            found = _run_child(way, model_dir, cpu_threads, reps)
            for clip, values in found.items():
                times[way].setdefault(clip, []).extend(values)
            note(f"loading round {round_ + 1}/{rounds} {way}: {found}")
    return times, max(loads)


def render(times: dict, cpu_threads: int, load: float) -> str:
    clips = list(next(iter(times.values())))
    header = "| loaded | " + " | ".join(f"{c} median s" for c in clips) + " | vs main thread |"
    lines = [
        "### Where the model is loaded (`python -m bench.loading`)",
        "",
        f"faster-whisper alone, Whisper base int8 on CPU, `cpu_threads={cpu_threads}`, beam 5, "
        "language given, no VAD; each way of loading in its own processes, taking turns. "
        f"Highest 1-minute load average at a child's start: {load:.1f}.",
        "",
        header,
        "|---|" + "---|" * len(clips) + "---|",
    ]
    base = {c: median(times["main"][c]) for c in clips}
    for way, described in WAYS.items():
        cells = [f"{median(times[way][c]):.3f}" for c in clips]
        ratio = " / ".join(f"{median(times[way][c]) / base[c]:.2f}" for c in clips)
        lines.append(f"| {described} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def _run_child(way: str, model_dir: str, cpu_threads: int, reps: int) -> dict:
    command = [sys.executable, "-m", "bench.loading", "--child", way, "--model", model_dir]
    command += ["--cpu-threads", str(cpu_threads), "--reps", str(reps)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=_repo())
    return json.loads(done.stdout.strip().splitlines()[-1])


def _repo() -> Path:
    return Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    from bench.run import DEFAULT_MODEL
    from services.whisper_en import bundled

    parser = argparse.ArgumentParser(prog="python -m bench.loading", description=__doc__)
    parser.add_argument("--child", choices=list(WAYS))
    parser.add_argument("--model", default="")
    parser.add_argument("--cpu-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    model_dir = args.model or str(bundled.assemble(DEFAULT_MODEL.expanduser()))
    if args.child:
        print(json.dumps(child(args.child, model_dir, args.cpu_threads, args.reps)))
        return 0
    times, load = measure(model_dir, args.cpu_threads, args.rounds, args.reps)
    print(render(times, args.cpu_threads, load))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
