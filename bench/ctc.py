"""Benchmarks for the CTC services, written to their own section of docs/benchmarks.md.

- Decoding a 60 s webm/opus clip to 16 kHz mono: in process with PyAV (what the services
  do) against piping it through an ffmpeg subprocess (what the services they replace did).
- The CTC backend's real-time factor on CPU for 1 s, 10 s and 120 s of speech, with a tiny
  and a base-sized randomly initialised model of each architecture (wav2vec2, w2v-BERT).
  Random weights cost the same time as trained ones: the figures are the model's cost, not
  its accuracy.

    python -m bench.ctc            # from the repository root; a few minutes on 2 cores
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench import docs
from services import registry
from services.core.audio import AudioLimits, AudioSpec, decode
from services.core.backend import SAMPLE_RATE, DecodeOptions
from services.core.cancellation import Cancellation
from tests import ctc_models
from tests.support import AUDIO_DIR, encode

LONG_CLIP = AUDIO_DIR / "en" / "long_concat_en.flac"
DECODE_SECONDS = 60
DECODE_RUNS = 7
INPUT_SECONDS = (1, 10, 120)
# One thread: CPU time is then the cost per core, comparable from one run to the next.
THREADS = 1
BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
BASE_CONV = dict(
    conv_dim=(512,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16,
)
# (label, service that runs it, builder, sizes)
MODELS = (
    ("wav2vec2 tiny", "arabic_words", ctc_models.wav2vec2, {}),
    ("wav2vec2 base", "arabic_words", ctc_models.wav2vec2, {**BASE, **BASE_CONV}),
    ("w2v-BERT tiny", "hausa_stt", ctc_models.w2v_bert, {}),
    ("w2v-BERT base", "hausa_stt", ctc_models.w2v_bert, BASE),
)
LIMITS = AudioLimits(max_bytes=1 << 30, max_seconds=3600)
SCALE_NOTE = (
    "The default checkpoints are larger than the base models here: hausa_stt's w2v-BERT 2.0 "
    "(0.6 B parameters) about 3.4 times the base w2v-BERT, arabic_words' XLSR-53 large "
    "(0.3 B) about 3.3 times the base wav2vec2; their cost grows about as much. 120 s costs "
    "more per second than 10 s: windows overlap by 2 x 2.5 s, and attention grows with the "
    "square of the window."
)


def speech() -> np.ndarray:
    return decode(LONG_CLIP.read_bytes(), AudioSpec(), LIMITS).samples


def timed(run) -> tuple[float, float]:
    """Wall-clock seconds, and CPU seconds of this process and its children.

    CPU time hardly counts time lost to other work on the machine, so it stays comparable
    when the machine is busy; wall-clock time is what a caller waits.
    """
    wall, cpu = time.perf_counter(), _cpu_seconds()
    run()
    return time.perf_counter() - wall, _cpu_seconds() - cpu


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def ffmpeg_pipe(content: bytes) -> np.ndarray:
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", "pipe:0"]
    command += ["-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"]
    done = subprocess.run(command, input=content, capture_output=True, check=True)
    return np.frombuffer(done.stdout, dtype=np.float32)


def decode_rows(samples: np.ndarray) -> list[list[str]]:
    clip = encode(samples[: DECODE_SECONDS * SAMPLE_RATE], SAMPLE_RATE, "webm", "libopus")
    methods = {"in process (PyAV)": lambda: decode(clip, AudioSpec(), LIMITS)}
    if shutil.which("ffmpeg"):
        methods["ffmpeg subprocess pipe"] = lambda: ffmpeg_pipe(clip)
    for run in methods.values():
        run()  # the first call pays for loading libraries
    # Taken in turns, so that load from elsewhere on the machine falls on both alike.
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
    for _ in range(DECODE_RUNS):
        for name, run in methods.items():
            times[name].append(timed(run))
    rows = []
    for name, taken in times.items():
        wall, cpu = medians(taken)
        rows.append(
            [name, f"{wall * 1e3:.0f}", f"{cpu * 1e3:.0f}", f"{DECODE_SECONDS / wall:.0f}x"]
        )
    if not shutil.which("ffmpeg"):
        rows.append(["ffmpeg subprocess pipe", "not run: no ffmpeg on this machine", "", ""])
    return rows


def rtf_rows(samples: np.ndarray, folder: Path) -> list[list[str]]:
    rows = []
    for label, service, build, sizes in MODELS:
        path = build(folder / label.replace(" ", "-"), **sizes)
        module = registry.load(service)
        settings = module.Settings(model=str(path), device="cpu", cpu_threads=THREADS)
        backend = module.Backend(settings)
        backend.load()
        backend.warm_up()
        params = sum(p.numel() for p in backend._model.module.parameters())
        for seconds in INPUT_SECONDS:
            wall, cpu = backend_seconds(backend, samples[: seconds * SAMPLE_RATE], label)
            figures = [f"{wall:.3f}", f"{cpu:.3f}", f"{wall / seconds:.3f}", f"{cpu / seconds:.3f}"]
            rows.append([label, _count(params), str(seconds), *figures])
            print(" | ".join(rows[-1]), flush=True)
    return rows


def backend_seconds(backend, audio: np.ndarray, label: str) -> tuple[float, float]:
    """Median wall and CPU time of one `transcribe`; fewer repeats where one takes long."""
    seconds = len(audio) / SAMPLE_RATE
    repeats = 7 if seconds < 10 else 3 if seconds < 100 or "tiny" in label else 1
    options, cancellation = DecodeOptions(), Cancellation()
    return medians(
        [timed(lambda: backend.transcribe(audio, options, cancellation)) for _ in range(repeats)]
    )


def _count(params: int) -> str:
    return f"{params / 1e6:.1f} M" if params >= 1e6 else f"{params / 1e3:.0f} K"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, no GPU, torch {torch.__version__}"


def load() -> str:
    """The 1-minute load average: work from other processes slows the wall-clock figures."""
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    samples = speech()
    loads = [load()]
    decoding = decode_rows(samples)
    with tempfile.TemporaryDirectory() as folder:
        rtf = rtf_rows(samples, Path(folder))
    loads.append(load())
    docs.write_section("ctc", render(decoding, rtf, loads))


def render(decoding: list[list[str]], rtf: list[list[str]], loads: list[str]) -> str:
    window = f"{THREADS} torch thread, 20 s windows with 2.5 s strides (the CPU default), VAD off"
    return "\n".join(
        [
            "## CTC services (hausa_stt, arabic_words)",
            "",
            f"`python -m bench.ctc` on {machine()}, {time.strftime('%Y-%m-%d')}. Medians. Load "
            f"average {loads[0]} at the start and {loads[1]} at the end: above the core count, "
            "other work shared the CPU and slowed the wall-clock figures; CPU time counts only "
            "this process's own work.",
            "",
            f"Decoding {DECODE_SECONDS} s of webm/opus speech to 16 kHz mono float32:",
            "",
            docs.table(["method", "wall ms", "CPU ms", "speed (wall)"], decoding),
            "",
            f"CTC backend on CPU, {window}. Real-time factor (RTF) = processing time / audio "
            "time; with one thread, CPU RTF is the cost per core:",
            "",
            docs.table(
                ["model", "parameters", "audio s", "wall s", "CPU s", "RTF", "CPU RTF"], rtf
            ),
            "",
            SCALE_NOTE,
        ]
    )


if __name__ == "__main__":
    main()
