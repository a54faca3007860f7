"""`python -m bench.streaming`: StreamingRecognize paced at real time against whisper_en.

Audio goes out in 100 ms messages at the pace it was spoken. For each final result, the end
of its speech is the end offset of its last word; the client sent that audio at
`start + offset`, so the final's latency is its arrival time minus that moment: the endpoint
pause and the decode together, as a user feels it. Also measured: time to the first interim
result, the service's CPU seconds per second of streamed audio, and how many real-time
streams one service holds before the median end-to-final latency passes 1 s.

Writes its section of docs/benchmarks.md (between its own markers).
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from stt.v1 import stt_pb2

from bench.clips import JFK, LONG_SOURCE, MEDIUM_S, RATE, decode
from bench.config import service_settings
from bench.cpu import process_seconds
from bench.docs import write_section
from bench.machine import describe, load_average
from bench.progress import note
from bench.run import DEFAULT_MODEL
from bench.service import serving
from bench.stats import median, percentile
from services.whisper_en import bundled
from services.whisper_en.settings import WhisperSettings
from tests.support import AUDIO_DIR

MESSAGE_S = 0.1
ENDPOINT_MS = WhisperSettings.model_fields["stream_endpoint_silence_ms"].default
TARGET_FINAL_P50_S = 0.5
CAPACITY_LIMIT_S = 1.0
MAX_STREAMS = 12
# Passes over each clip for its row: one pass of the 30 s clip gives only 8 or 9 finals, and
# their median moves by 100 ms between runs; the row pools every pass's finals.
PASSES = 3


@dataclass
class StreamRun:
    final_latencies: list[float]
    first_interim_s: float | None  # from the first audio sent
    audio_s: float


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def stream_once(stub, audio: bytes) -> StreamRun:
    """Streams `audio` at real time; times every final and the first interim."""
    config = stt_pb2.StreamingRecognitionConfig(
        config=stt_pb2.RecognitionConfig(
            encoding=stt_pb2.RecognitionConfig.LINEAR16,
            sample_rate_hertz=RATE,
            language_code="en",
            enable_word_time_offsets=True,
        ),
        interim_results=True,
    )
    chunk = int(RATE * MESSAGE_S) * 2
    started = threading.Event()
    clock = {}

    def messages():
        yield stt_pb2.StreamingRecognizeRequest(streaming_config=config)
        clock["t0"] = time.monotonic()
        started.set()
        for index, offset in enumerate(range(0, len(audio), chunk)):
            # Sleep to the message's own moment, so delays do not add up.
            time.sleep(max(0.0, clock["t0"] + index * MESSAGE_S - time.monotonic()))
            yield stt_pb2.StreamingRecognizeRequest(audio_content=audio[offset : offset + chunk])

    latencies, first_interim = [], None
    for response in stub.StreamingRecognize(messages(), timeout=600):
        now = time.monotonic()
        for result in response.results:
            if not result.is_final:
                first_interim = first_interim or now - clock["t0"]
                continue
            words = result.alternatives[0].words
            if words:
                spoken_end = words[-1].end_offset.ToTimedelta().total_seconds()
                sent_at = clock["t0"] + (int(spoken_end / MESSAGE_S) + 1) * MESSAGE_S
                latencies.append(now - min(now, sent_at))
    return StreamRun(latencies, first_interim, len(audio) / 2 / RATE)


def pooled(runs: list[StreamRun]) -> StreamRun:
    """Several passes as one: every final, the median first interim, all the audio."""
    firsts = [r.first_interim_s for r in runs if r.first_interim_s is not None]
    return StreamRun(
        [x for r in runs for x in r.final_latencies],
        median(firsts) if firsts else None,
        sum(r.audio_s for r in runs),
    )


def concurrent_streams(stub, audio: bytes, count: int) -> list[StreamRun]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: stream_once(stub, audio), range(count)))


def measure(
    model_dir,
    quick: bool,
    counts=None,
    max_batch_size=0,
    max_concurrency=8,
    batching=False,
    cpu_threads=0,
) -> str:
    jfk = pcm16(decode(AUDIO_DIR / JFK))
    medium = pcm16(decode(AUDIO_DIR / LONG_SOURCE)[: int(MEDIUM_S * RATE)])
    # One slot per stream decode: streams' decodes share batches only when they run at once.
    settings = service_settings(
        model_dir,
        cpu_threads=cpu_threads,  # 0, the default: the cores shared out among the replicas
        max_concurrency=max_concurrency,
        max_queue=max_concurrency,
        max_batch_size=max_batch_size,
        stream_batching=batching,
    )
    counts = counts or list(range(1, 3 if quick else MAX_STREAMS + 1))
    loads = []
    rows, capacity = [], []
    with serving(settings) as service:
        for name, audio in (("jfk 11 s", jfk), (f"concat {MEDIUM_S:.0f} s", medium)):
            note(f"streaming {name} at real time, {PASSES} passes")
            cpu_before = process_seconds(service.pid)
            runs = [stream_once(service.stub, audio) for _ in range(PASSES)]
            run = pooled(runs)
            cpu = (process_seconds(service.pid) - cpu_before) / run.audio_s
            rows.append((name, run, cpu))
        for count in counts:
            loads.append(load_average())
            note(f"{count} concurrent real-time streams of {MEDIUM_S:.0f} s (load {loads[-1]:.1f})")
            runs = concurrent_streams(service.stub, medium, count)
            latencies = [x for run in runs for x in run.final_latencies]
            capacity.append((count, median(latencies), percentile(latencies, 90)))
            if median(latencies) > CAPACITY_LIMIT_S:
                break
    setup = (max_batch_size, max_concurrency, min(loads), max(loads), batching, cpu_threads)
    return render(rows, capacity, setup)


def render(rows, capacity, setup) -> str:
    lines = [
        "## Streaming (StreamingRecognize, whisper_en)",
        "",
        "Reproduce: `python -m bench.streaming`. Real-time pacing, 100 ms LINEAR16 messages,",
        f"interim results on, endpoint pause {ENDPOINT_MS} ms (the service defaults), "
        "Whisper base int8.",
        "End-to-final: from the moment the client sent the audio holding an utterance's last",
        f"word to the arrival of its final result. Each clip's row pools {PASSES} passes over it.",
        "",
        "| clip | finals | end-to-final p50 | p90 | target p50 | first interim after | "
        "service CPU s per audio s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run, cpu in rows:
        p50 = median(run.final_latencies)
        verdict = "met" if p50 < TARGET_FINAL_P50_S else "missed"
        first = f"{run.first_interim_s:.2f} s" if run.first_interim_s else "none"
        lines.append(
            f"| {name} | {len(run.final_latencies)} | {p50 * 1000:.0f} ms | "
            f"{percentile(run.final_latencies, 90) * 1000:.0f} ms | < 500 ms ({verdict}) | "
            f"{first} | {cpu:.2f} |"
        )
    batch_size = f"`max_batch_size={setup[0]}`" if setup[0] else "`max_batch_size=0`, off on a CPU"
    lines += [
        "",
        f"Concurrent real-time streams of the 30 s clip on one service ({batch_size}, "
        f"`cpu_threads={setup[5]}`, `max_concurrency={setup[1]}`, "
        f"`stream_batching={setup[4]}`; 1-minute load average {setup[2]:.1f} to "
        f"{setup[3]:.1f} at the steps' starts):",
        "",
        "| streams | end-to-final p50 | p90 |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {p50 * 1000:.0f} ms | {p90 * 1000:.0f} ms |" for n, p50, p90 in capacity]
    held = max((n for n, p50, _ in capacity if p50 <= CAPACITY_LIMIT_S), default=0)
    lines += ["", f"Streams held with a median end-to-final under 1 s: **{held}**."]
    machine = describe(load_average())
    lines += ["", f"Measured on {machine['CPU']}, {machine['Cores']} cores, {machine['Date']}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer concurrent-stream steps")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--counts", type=int, nargs="*", help="concurrent streams to try")
    parser.add_argument(
        "--max-batch-size", type=int, default=0, help="0: the service default; 1: batching off"
    )
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--stream-batching", action="store_true", help="streams' passes batch")
    parser.add_argument("--cpu-threads", type=int, default=0, help="0: the service default")
    args = parser.parse_args(argv)
    model_dir = bundled.assemble(DEFAULT_MODEL.expanduser())
    section = measure(
        model_dir,
        args.quick,
        args.counts,
        args.max_batch_size,
        args.max_concurrency,
        args.stream_batching,
        args.cpu_threads,
    )
    print(section)
    if not args.no_write:
        write_section("streaming", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
