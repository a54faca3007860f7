"""`python -m bench.run`: whisper_en against faster-whisper on this machine, side by side.

Prints a Markdown report on stdout (progress goes to stderr) and writes it as its own section
of docs/benchmarks.md, leaving the other benchmarks' sections alone; `--quick` is a smoke check
that skips the 200 s clip and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench import fast_answers, latency, throughput
from bench.clips import Clip, load_clips, long_clip
from bench.config import Plan, service_settings
from bench.docs import PAGE, write_section
from bench.library import Library
from bench.machine import describe, load_average
from bench.progress import note
from bench.report import Results, render
from bench.service import serving
from bench.sides import library_side, service_side
from services.whisper_en import bundled
from tests.support import AUDIO_DIR

DEFAULT_MODEL = Path("~/.cache/stt-suite/whisper-base-ct2")
SECTION = "recognize"
LOOP_BUDGET_S = 60.0  # cache-hit and rejection loops stop after this, whatever their count
# Full run, then --quick, for every count the command line leaves unset.
DEFAULTS = {"reps": (5, 2), "long_reps": (2, 0), "requests": (12, 4)}
DEFAULTS |= {"cache_calls": (200, 50), "reject_calls": (200, 50)}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = _plan(args)
    started, load_at_start = time.monotonic(), load_average()
    clips = load_clips(plan.audio_dir, include_long=plan.long_reps > 0)
    jfk = next(clip for clip in clips if clip.name.startswith("jfk"))
    results = Results(
        latency=_latency(plan, clips),
        throughput=_throughput(plan, [clip for clip in clips if clip.seconds < 15]),
        cache_hits=_cache_hits(plan, jfk),
        rejections=_rejections(plan, long_clip(plan.audio_dir), jfk),
    )
    report = render(plan, describe(load_at_start), results, time.monotonic() - started)
    print(report)
    if not (plan.quick or args.no_write):
        write_section(SECTION, report)
        note(f"wrote its section of {PAGE}")
    return 0


def _latency(plan: Plan, clips: list[Clip]) -> list[latency.LatencyRow]:
    note("latency: one request at a time, library and service alternating")
    # One inference at a time on each side: one worker, one slot, no cache.
    settings = service_settings(plan.model_dir, plan.cpu_threads, cache_size=0, max_concurrency=1)
    library = library_side(Library(settings, num_workers=1))
    reps = {clip.name: plan.long_reps if clip.seconds > 60 else plan.reps for clip in clips}
    with serving(settings) as service:
        return latency.measure_latency(
            clips, library, service_side(service), lambda clip: reps[clip.name]
        )


def _throughput(plan: Plan, clips: list[Clip]) -> list[throughput.ThroughputRow]:
    note(f"throughput: {plan.clients} clients, {plan.requests} requests per clip and side")
    settings = service_settings(
        plan.model_dir,
        plan.throughput_cpu_threads,
        cache_size=0,
        max_concurrency=plan.clients,
    )
    library = library_side(Library(settings, num_workers=plan.clients))
    with serving(settings) as service:
        return throughput.measure_throughput(
            clips, library, service_side(service), plan.requests, plan.clients
        )


def _cache_hits(plan: Plan, clip: Clip) -> fast_answers.FastAnswers:
    note(f"cache hits: {plan.cache_calls} repeats of {clip.name}")
    settings = service_settings(plan.model_dir, plan.cpu_threads)  # default cache size
    with serving(settings) as service:
        return fast_answers.measure_cache_hits(
            service, clip.content, plan.cache_calls, LOOP_BUDGET_S
        )


def _rejections(plan: Plan, busy: Clip, clip: Clip) -> fast_answers.FastAnswers:
    note(f"rejections: {plan.reject_calls} requests while {busy.name} holds the only slot")
    settings = service_settings(
        plan.model_dir, plan.cpu_threads, cache_size=0, max_concurrency=1, max_queue=0
    )
    with serving(settings) as service:
        return fast_answers.measure_rejections(
            service, busy.content, clip.content, plan.reject_calls, LOOP_BUDGET_S
        )


def _plan(args: argparse.Namespace) -> Plan:
    counts = {
        name: getattr(args, name) if getattr(args, name) is not None else pair[args.quick]
        for name, pair in DEFAULTS.items()
    }
    model_dir = args.model or bundled.assemble(DEFAULT_MODEL.expanduser())
    cores = os.cpu_count() or 1
    return Plan(
        model_dir=model_dir,
        audio_dir=args.audio_dir,
        quick=args.quick,
        cpu_threads=args.cpu_threads or cores,
        clients=args.clients,
        throughput_cpu_threads=args.throughput_cpu_threads or max(1, cores // args.clients),
        **counts,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs, no 200 s clip")
    parser.add_argument("--model", type=Path, help="CTranslate2 Whisper folder (default: bundled)")
    parser.add_argument("--audio-dir", type=Path, default=AUDIO_DIR, help="the shared clips")
    parser.add_argument("--reps", type=int, help="latency runs per side, clips up to 30 s")
    parser.add_argument("--long-reps", type=int, help="latency runs per side, 200 s clip (0: skip)")
    parser.add_argument("--cpu-threads", type=int, help="threads per inference (default: cores)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (throughput)")
    parser.add_argument("--requests", type=int, help="throughput requests per clip and side")
    parser.add_argument(
        "--throughput-cpu-threads",
        type=int,
        help="threads per inference under load (default: cores / clients, at least 1)",
    )
    parser.add_argument("--cache-calls", type=int, help="repeated calls answered from the cache")
    parser.add_argument("--reject-calls", type=int, help="requests refused while full")
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
