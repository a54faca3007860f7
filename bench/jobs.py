"""Long-running jobs on CPU: throughput and latency for 2, 10 and 30 minutes of audio per job,
with one worker and with two, written to their section of docs/benchmarks.md.

    python -m bench.jobs [--minutes 2 10 30] [--jobs 2] [--no-write]

whisper_en, the router (with a SQLite job store in a temporary folder) and the workers run as
their own processes (`stt serve`, `stt router`, `stt worker`), as in the cluster; this process
is the client. Each round submits `--jobs` jobs of the same length at once and waits for all:
a job's latency runs from its acceptance to its end, throughput is the audio transcribed per
second of the round. whisper_en's result cache is off, so the jobs' identical audio costs the
same every time. The audio is the shared clip `en/long_concat_en.flac` (13 recordings, 127 s)
repeated to the length, as FLAC.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
from google.longrunning import operations_pb2, operations_pb2_grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from bench.docs import table, write_section
from bench.machine import describe, load_average
from bench.router import PathClient, start, wait_serving
from services.core.audio import AudioLimits, AudioSpec, decode
from tests.support import AUDIO_DIR, encode

SOURCE = AUDIO_DIR / "en" / "long_concat_en.flac"
PORTS = {"whisper_en": (50171, 9171), "router": (50170, 9170)}
WORKER_HTTP_PORTS = (9172, 9173)
PAUSE_S = 1.0
POLL_S = 0.5
ROUND_TIMEOUT_S = 4 * 3600


def audio_of(minutes: float) -> tuple[bytes, float]:
    """The source clip repeated (a second of silence apart) to at least `minutes`, as FLAC."""
    samples = decode(SOURCE.read_bytes(), AudioSpec(), AudioLimits(1 << 30, 3600)).samples
    pause = np.zeros(int(16_000 * PAUSE_S), dtype=np.float32)
    one = np.concatenate([samples, pause])
    repeats = math.ceil(minutes * 60 * 16_000 / len(one))
    whole = np.tile(one, repeats)
    return encode(whole, 16_000, "flac", "flac"), len(whole) / 16_000


class Stack:
    """whisper_en, the router with a job store, and `workers` workers, each a process."""

    def __init__(self, data_dir: Path, workers: int, whisper_env: dict[str, str] | None = None):
        (wg, wh), (rg, rh) = PORTS["whisper_en"], PORTS["router"]
        self.target = f"127.0.0.1:{rg}"
        backend = start(
            ["serve", "whisper_en", "--grpc-port", str(wg), "--http-port", str(wh)],
            {"WHISPER_EN_CACHE_SIZE": "0", **(whisper_env or {})},
        )
        router_env = {
            "ROUTER_BACKENDS": f"whisper_en=dns:///127.0.0.1:{wg}",
            "ROUTER_ROUTES": "en=whisper_en",
            "ROUTER_DATA_DIR": str(data_dir),
        }
        router = start(["router", "--grpc-port", str(rg), "--http-port", str(rh)], router_env)
        self.processes = [backend, router]
        wait_serving(PathClient(f"127.0.0.1:{wg}"))
        wait_serving(PathClient(self.target))
        for port in WORKER_HTTP_PORTS[:workers]:
            flags = ["--data-dir", str(data_dir), "--target", self.target]
            self.processes.append(start(["worker", *flags, "--http-port", str(port)], {}))
        self.channel = grpc.insecure_channel(
            self.target, options=[("grpc.max_send_message_length", -1)]
        )
        self.speech = stt_pb2_grpc.SpeechStub(self.channel)
        self.operations = operations_pb2_grpc.OperationsStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        for process in reversed(self.processes):
            process.terminate()
            process.wait(60)


def run_round(stack: Stack, content: bytes, jobs: int) -> dict:
    """Submits `jobs` jobs at once; each one's latency and the round's wall time."""
    request = stt_pb2.LongRunningRecognizeRequest(
        config=stt_pb2.RecognitionConfig(language_code="en"),
        audio=stt_pb2.RecognitionAudio(content=content),
    )
    started = time.perf_counter()
    accepted = {}
    for _ in range(jobs):
        name = stack.speech.LongRunningRecognize(request, timeout=300).name
        accepted[name] = time.perf_counter()
    latencies: dict[str, float] = {}
    heard = 0  # words in the jobs' transcripts
    deadline = started + ROUND_TIMEOUT_S
    while len(latencies) < jobs and time.perf_counter() < deadline:
        for name in set(accepted) - set(latencies):
            operation = stack.operations.GetOperation(
                operations_pb2.GetOperationRequest(name=name), timeout=30
            )
            if operation.done:
                if operation.HasField("error"):
                    raise SystemExit(f"job {name} failed: {operation.error}")
                latencies[name] = time.perf_counter() - accepted[name]
                response = stt_pb2.LongRunningRecognizeResponse()
                operation.response.Unpack(response)
                heard += sum(len(r.alternatives[0].transcript.split()) for r in response.results)
        time.sleep(POLL_S)
    if len(latencies) < jobs:
        raise SystemExit(f"the jobs did not finish within {ROUND_TIMEOUT_S} s")
    wall = time.perf_counter() - started
    return {"latencies": sorted(latencies.values()), "wall": wall, "words": heard}


def measure(args: argparse.Namespace) -> list[dict]:
    rows = []
    for minutes in args.minutes:
        content, seconds = audio_of(minutes)
        for workers in (1, 2):
            with tempfile.TemporaryDirectory(prefix="bench-jobs-") as data_dir:
                stack = Stack(Path(data_dir), workers)
                try:
                    found = run_round(stack, content, args.jobs)
                finally:
                    stack.close()
            found.update(minutes=minutes, seconds=seconds, workers=workers, jobs=args.jobs)
            rows.append(found)
            print(_row(found), flush=True)
    return rows


def _row(found: dict) -> list[str]:
    latencies = found["latencies"]
    audio = found["seconds"] * found["jobs"]
    return [
        f"{found['seconds'] / 60:.1f} min",
        str(found["workers"]),
        str(found["jobs"]),
        f"{statistics.median(latencies):.0f}",
        f"{max(latencies):.0f}",
        f"{found['wall']:.0f}",
        f"{audio / found['wall']:.1f}x",
    ]


def summary(rows: list[dict], load: float) -> str:
    machine = describe(load)
    header = [
        "audio per job",
        "workers",
        "jobs at once",
        "job latency p50 s",
        "job latency max s",
        "round wall s",
        "throughput (x real time)",
    ]
    return "\n".join(
        [
            "## Long-running jobs (`python -m bench.jobs`)",
            "",
            f"Measured {machine['Date']} on {machine['CPU']} ({machine['Cores']} cores), "
            f"Python {machine['Python']}, load average at start / end "
            f"{machine['Load average (1 min), start / end']}. whisper_en (bundled base model, "
            "int8 on CPU, result cache off), the router with a SQLite job store and the workers "
            "are separate processes on this one machine; each round submits its jobs at once "
            "(audio by `content`, FLAC) and waits for all. Latency: acceptance to end, queueing "
            "included. Throughput: audio transcribed per second of the round.",
            "",
            table(header, [_row(r) for r in rows]),
            "",
            "Reading them: every worker sends its chunks to the same whisper_en, whose inference "
            "slots and cores all workers share; a second worker lets a second job start at once "
            "instead of queueing, and pays off as far as whisper_en has cores to spare. In the "
            "cluster, workers and language-service replicas scale apart.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[2, 10, 30])
    parser.add_argument("--jobs", type=int, default=2, help="jobs submitted at once per round")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the page")
    args = parser.parse_args()
    if not SOURCE.is_file():
        raise SystemExit(f"the shared clip {SOURCE} is missing")
    load = load_average()
    rows = measure(args)
    text = summary(rows, load)
    print(text)
    if not args.no_write:
        write_section("jobs", text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
