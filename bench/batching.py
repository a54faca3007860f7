"""`python -m bench.batching`: dynamic batching, side by side with faster-whisper used the way a
user would use it, in one run, the sides taking turns. Writes its figures to a section of
their own in docs/benchmarks.md ("batching-run").

- long audio (254 s and 32 min of the shared long clip): whisper_en's `Recognize` and a
  `LongRunningRecognize` job through `stt up`'s processes (router, worker, whisper_en) against
  faster-whisper's `BatchedInferencePipeline` at batch 8 (its best for long audio) and, for
  254 s, `WhisperModel.transcribe` with its VAD filter;
- 8 concurrent clients of 5-12 s clips: whisper_en against one `WhisperModel` with
  `num_workers=8` in one process;
- one request at a time (jfk 11 s, 30 s): whisper_en with batching on against the library at
  its defaults (no VAD on either side), the library loaded on the main thread as its README
  does and on a thread that ends as `stt serve` does;
- the CTC backend (base-sized random models made as bench/ctc.py makes them): 8 concurrent
  requests, batched against unbatched.

Same model (the bundled Whisper base, int8 on CPU), beam 5, language given, the same threads
on both sides unless a row says otherwise. The 1-minute load average is recorded before every
step: the machine is shared, and a figure taken while others ran is noisier.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

from bench import jobs, loading
from bench.clips import LONG_SOURCE, RATE, decode
from bench.config import service_settings
from bench.docs import table, write_section
from bench.library import Library
from bench.loading import load
from bench.machine import describe, load_average
from bench.progress import note
from bench.run import DEFAULT_MODEL
from bench.service import serving
from services.whisper_en import bundled
from tests.support import AUDIO_DIR, encode, words

CLIENT_CLIPS = (
    "en/mr_quilter_picovoice_leopard.wav",
    "en/ljspeech_LJ050-0131.wav",
    "en/librispeech_1995-1837-0001.wav",
    "en/jfk.flac",
    "en/librispeech_2412-153948-0000.flac",
)
CLIENTS = 8
THREADS = os.cpu_count() or 1
TARGETS = {"long": 0.9, "clients": 1.3, "latency": 1.03, "ctc": 1.5}
LATENCY_LIBRARY = {
    "main": "library, loaded on the main thread (README), a process of its own",
    "ended": "library, loaded on a thread that ended, a process of its own",
}


class Steps:
    """The load average before each step, kept for the report."""

    def __init__(self):
        self.loads: list[float] = []

    def __call__(self, message: str) -> None:
        self.loads.append(load_average())
        note(f"{message} (load {self.loads[-1]:.1f})")

    def span(self) -> str:
        return f"{min(self.loads):.1f} to {max(self.loads):.1f}" if self.loads else "none"


# Long audio.
def long_audio(seconds: float) -> tuple[bytes, np.ndarray]:
    """The shared long clip (127 s) repeated to `seconds`, as FLAC and as samples."""
    source = decode(AUDIO_DIR / LONG_SOURCE)
    samples = np.tile(source, math.ceil(seconds * RATE / len(source)))[: int(seconds * RATE)]
    return encode(samples, RATE, "flac", "flac"), samples


def library_batched(model: WhisperModel, content: bytes) -> str:
    pipeline = BatchedInferencePipeline(model)
    segments, _ = pipeline.transcribe(
        decode_audio(io.BytesIO(content)), language="en", beam_size=5, batch_size=8
    )
    return " ".join(s.text.strip() for s in segments)


def library_sequential(model: WhisperModel, content: bytes) -> str:
    segments, _ = model.transcribe(
        decode_audio(io.BytesIO(content)), language="en", beam_size=5, vad_filter=True
    )
    return " ".join(s.text.strip() for s in segments)


def timed(run) -> tuple[float, str]:
    started = time.perf_counter()
    text = run()
    return time.perf_counter() - started, text


def measure_long(model_dir: Path, lengths: list[float], step: Steps) -> list[dict]:
    # Loaded on a thread that ends, and the only model of this process: the library at its
    # best (loaded on the main thread, as its README does, it decodes up to twice as slowly
    # on this machine; `python -m bench.loading` shows why).
    model = load("ended", str(model_dir), THREADS)
    settings = service_settings(
        model_dir, THREADS, cache_size=0, max_audio_seconds=2400, max_queue=4
    )
    rows = []
    with serving(settings) as service:
        for seconds in lengths:
            content, _ = long_audio(seconds)
            sides = {
                "library BatchedInferencePipeline, batch 8": library_batched,
                "whisper_en Recognize": lambda _, c: service.recognize(c, timeout_s=3600),
            }
            if seconds < 600:
                sides["library WhisperModel.transcribe, vad_filter"] = library_sequential
            for name, run in sides.items():
                step(f"long audio {seconds:.0f} s: {name}")
                wall, text = timed(lambda run=run, content=content: run(model, content))
                rows.append(dict(audio_s=seconds, side=name, wall=wall, words=len(words(text))))
                note(f"  {wall:.1f} s, {rows[-1]['words']} words")
    for seconds in lengths:
        content, _ = long_audio(seconds)
        step(f"long audio {seconds:.0f} s: job")
        wall, count = run_job(model_dir, content)
        rows.append(dict(audio_s=seconds, side="whisper_en job (stt up)", wall=wall, words=count))
        note(f"  {wall:.1f} s, {count} words")
    return rows


def run_job(model_dir: Path, content: bytes) -> tuple[float, int]:
    env = {"WHISPER_EN_MODEL": str(model_dir), "WHISPER_EN_CPU_THREADS": str(THREADS)}
    with tempfile.TemporaryDirectory(prefix="bench-batching-") as folder:
        stack = jobs.Stack(Path(folder), 1, env)
        try:
            found = jobs.run_round(stack, content, 1)
            return found["wall"], found["words"]
        finally:
            stack.close()


# Concurrent clients.
def measure_clients(model_dir: Path, waves: int, step: Steps) -> dict:
    contents = [(AUDIO_DIR / path).read_bytes() for path in CLIENT_CLIPS]
    seconds = [len(decode(AUDIO_DIR / path)) / RATE for path in CLIENT_CLIPS]
    wave_audio = sum(seconds[i % len(contents)] for i in range(CLIENTS))
    library_settings = service_settings(model_dir, 1, cache_size=0)
    library = Library(library_settings, num_workers=CLIENTS)
    # whisper_en at its default cpu_threads (0): it shares the cores out among its replicas.
    settings = service_settings(
        model_dir, 0, cache_size=0, max_concurrency=CLIENTS, max_queue=CLIENTS
    )
    walls: dict[str, list[float]] = {"library": [], "service": []}
    with serving(settings) as service:
        sides = {"library": library.transcribe, "service": service.recognize}
        for side in sides.values():
            _wave(side, contents)  # untimed: every worker has run once
        for wave in range(waves):
            order = list(sides) if wave % 2 == 0 else list(reversed(sides))
            for name in order:
                step(f"clients wave {wave + 1}/{waves}: {name}")
                walls[name].append(_wave(sides[name], contents))
    rates = {name: wave_audio * len(w) / sum(w) for name, w in walls.items()}
    return dict(rates=rates, walls=walls, audio=wave_audio)


def _wave(transcribe, contents: list[bytes]) -> float:
    with ThreadPoolExecutor(CLIENTS) as pool:
        started = time.perf_counter()
        list(pool.map(lambda i: transcribe(contents[i % len(contents)]), range(CLIENTS)))
        return time.perf_counter() - started


# One request at a time.
def measure_latency(model_dir: Path, reps: int, step: Steps) -> list[dict]:
    """The library in processes of its own (one model per process: a second model, or a
    loading thread that lives on, changes how fast CTranslate2 decodes), loaded the README's
    way and on a thread that ends; whisper_en at its defaults; the library as `make bench`
    calls it, in this process."""
    step("latency: the library in processes of its own")
    found, _ = loading.measure(str(model_dir), 0, 2, max(1, reps // 2), ("main", "ended"))
    rows = [
        dict(clip=clip, side=LATENCY_LIBRARY[way], median=statistics.median(values))
        for way, clips in found.items()
        for clip, values in clips.items()
    ]
    clips = {
        "jfk 11 s": (AUDIO_DIR / "en/jfk.flac").read_bytes(),
        "concat 30 s": encode(decode(AUDIO_DIR / LONG_SOURCE)[: 30 * RATE], RATE, "flac", "flac"),
    }
    settings = service_settings(model_dir, 0, cache_size=0)  # cpu_threads 0: the defaults too
    with serving(settings) as service:
        sides = {
            "library as `make bench` calls it (in process, VAD filter, `decode_audio`)": Library(
                settings
            ).transcribe,
            "whisper_en, VAD off": lambda c: service.recognize_plain(c, vad=False),
            "whisper_en, VAD on (its default)": lambda c: service.recognize_plain(c, vad=True),
        }
        for side in sides.values():
            side(clips["jfk 11 s"])
        for clip, content in clips.items():
            times: dict[str, list[float]] = {name: [] for name in sides}
            for rep in range(reps):
                step(f"latency {clip} rep {rep + 1}/{reps}")
                order = list(sides) if rep % 2 == 0 else list(reversed(sides))
                for name in order:
                    side = sides[name]
                    times[name].append(timed(lambda s=side, c=content: s(c))[0])
            for name, values in times.items():
                rows.append(dict(clip=clip, side=name, median=statistics.median(values)))
    return rows


# The CTC backend.
def measure_ctc(waves: int, step: Steps) -> list[dict]:
    from bench.ctc import BASE, BASE_CONV
    from services import registry
    from tests import ctc_models
    from tests.support import request, running

    content = (AUDIO_DIR / "en/librispeech_1995-1837-0001.wav").read_bytes()
    audio_s = len(decode(AUDIO_DIR / "en/librispeech_1995-1837-0001.wav")) / RATE
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ctc-") as folder:
        for label, service, build, sizes in (
            ("wav2vec2 base", "arabic_words", ctc_models.wav2vec2, {**BASE, **BASE_CONV}),
            ("w2v-BERT base", "hausa_stt", ctc_models.w2v_bert, BASE),
        ):
            path = build(Path(folder) / label.replace(" ", "-"), **sizes)
            module = registry.load(service)
            walls: dict[int, list[float]] = {1: [], 8: []}
            servers = {}
            for batch in walls:
                settings = module.Settings(
                    model=str(path),
                    grpc_port=0,
                    http_port=0,
                    device="cpu",
                    cpu_threads=THREADS,
                    max_batch_size=batch,
                    max_concurrency=CLIENTS,
                    max_queue=CLIENTS,
                    cache_size=0,
                )
                servers[batch] = running(service, settings, module.Backend(settings))
            with servers[1] as alone, servers[8] as batched:
                sides = {1: alone, 8: batched}
                for server in sides.values():
                    assert server.wait_loaded()
                language = "ar" if service == "arabic_words" else "ha"

                def call(server, language=language):
                    return server.stub.Recognize(
                        request(content, language_code=language), timeout=600
                    )

                for wave in range(waves + 1):
                    for batch in (1, 8) if wave % 2 == 0 else (8, 1):
                        step(f"ctc {label} wave {wave + 1}: batch {batch}")
                        with ThreadPoolExecutor(CLIENTS) as pool:
                            started = time.perf_counter()
                            target = sides[batch]
                            list(pool.map(lambda _, t=target: call(t), range(CLIENTS)))
                            if wave:  # the first wave of each side is untimed
                                walls[batch].append(time.perf_counter() - started)
            rate = {b: CLIENTS * audio_s * len(w) / sum(w) for b, w in walls.items()}
            rows.append(dict(model=label, unbatched=rate[1], batched=rate[8]))
    return rows


# The report.
def render(long_rows, clients, latency_rows, ctc_rows, machine, steps: Steps) -> str:
    parts = [
        "## Dynamic batching (`python -m bench.batching`)",
        "",
        f"Measured {machine['Date']} on {machine['CPU']} ({machine['Cores']} cores, shared with "
        f"other work: 1-minute load average {steps.span()} across the steps), faster-whisper "
        f"{machine['faster-whisper']}, ctranslate2 {machine['ctranslate2']}. The bundled Whisper "
        f"base, int8 on CPU, beam 5, language given, `cpu_threads={THREADS}` on both sides "
        "unless a row says otherwise; the sides take turns.",
    ]
    if long_rows:
        parts += ["", _long_table(long_rows)]
    if clients:
        parts += ["", _clients_table(clients)]
    if latency_rows:
        parts += ["", _latency_table(latency_rows)]
    if ctc_rows:
        parts += ["", _ctc_table(ctc_rows)]
    return "\n".join(parts)


def _long_table(rows) -> str:
    lines = ["### Long audio: wall time, over `BatchedInferencePipeline` at batch 8", ""]
    body = []
    for seconds in sorted({r["audio_s"] for r in rows}):
        mine = [r for r in rows if r["audio_s"] == seconds]
        base = next(r["wall"] for r in mine if "Batched" in r["side"])
        for r in mine:
            verdict = ""
            if r["side"].startswith("whisper_en"):
                met = r["wall"] / base <= TARGETS["long"]
                verdict = f"<= {TARGETS['long']}: {'met' if met else 'missed'}"
            body.append(
                [
                    f"{seconds / 60:.1f} min",
                    r["side"],
                    f"{r['wall']:.1f}",
                    f"{seconds / r['wall']:.1f}x",
                    f"{r['wall'] / base:.2f}",
                    verdict,
                    str(r["words"]),
                ]
            )
    header = ["audio", "side", "wall s", "speed", "over batched", "target", "words"]
    return "\n".join(lines) + table(header, body)


def _clients_table(found) -> str:
    rates = found["rates"]
    ratio = rates["service"] / rates["library"]
    verdict = f">= {TARGETS['clients']}: {'met' if ratio >= TARGETS['clients'] else 'missed'}"
    body = [
        ["library, one WhisperModel, num_workers=8, cpu_threads=1", f"{rates['library']:.2f}", ""],
        [
            "whisper_en at its defaults (cpu_threads 0, no batches on a CPU), max_concurrency 8",
            f"{rates['service']:.2f}",
            f"{ratio:.2f} ({verdict})",
        ],
    ]
    title = (
        f"### {CLIENTS} concurrent clients of 5-12 s clips: audio seconds per wall second "
        f"({len(found['walls']['service'])} timed waves of {CLIENTS} requests per side)"
    )
    return title + "\n\n" + table(["side", "audio s / s", "over the library"], body)


def _latency_table(rows) -> str:
    body = []
    for clip in dict.fromkeys(r["clip"] for r in rows):
        mine = [r for r in rows if r["clip"] == clip]
        readme = next(r["median"] for r in mine if r["side"] == LATENCY_LIBRARY["main"])
        best = next(r["median"] for r in mine if r["side"] == LATENCY_LIBRARY["ended"])
        for r in mine:
            seconds = r["median"]
            body.append(
                [
                    clip,
                    r["side"],
                    f"{seconds:.3f}",
                    f"{seconds / readme:.2f}",
                    f"{seconds / best:.2f}",
                ]
            )
    title = (
        "### One request at a time (medians): the library at its defaults (`cpu_threads=0`), "
        "whisper_en at its defaults"
    )
    header = ["clip", "side", "seconds", "over the README's", "over the library at its best"]
    return title + "\n\n" + table(header, body)


def _ctc_table(rows) -> str:
    body = [
        [
            r["model"],
            f"{r['unbatched']:.2f}",
            f"{r['batched']:.2f}",
            f"{r['batched'] / r['unbatched']:.2f}",
            "met" if r["batched"] / r["unbatched"] >= TARGETS["ctc"] else "missed",
        ]
        for r in rows
    ]
    title = (
        f"### CTC backend: {CLIENTS} concurrent requests of 8.7 s, batched (up to 8) over "
        f"unbatched, audio seconds per wall second (`cpu_threads={THREADS}`)"
    )
    header = ["model (random weights)", "unbatched", "batched", "ratio", f">= {TARGETS['ctc']}"]
    return title + "\n\n" + table(header, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batching", description=__doc__)
    parser.add_argument("--long", type=float, nargs="*", default=[254.0, 1920.0])
    parser.add_argument("--waves", type=int, default=3, help="timed waves per side (clients)")
    parser.add_argument("--reps", type=int, default=3, help="latency runs per side and clip")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["long", "clients", "latency", "ctc"]
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    model_dir = bundled.assemble(DEFAULT_MODEL.expanduser())
    steps, started = Steps(), load_average()
    latency_rows = [] if "latency" in args.skip else measure_latency(model_dir, args.reps, steps)
    clients = {} if "clients" in args.skip else measure_clients(model_dir, args.waves, steps)
    ctc_rows = [] if "ctc" in args.skip else measure_ctc(args.waves, steps)
    long_rows = [] if "long" in args.skip else measure_long(model_dir, args.long, steps)
    text = render(long_rows, clients, latency_rows, ctc_rows, describe(started), steps)
    print(text)
    if not args.no_write:
        # Its own section: the "batching" one holds these figures with what was found
        # behind them, which a new run does not write.
        write_section("batching-run", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
