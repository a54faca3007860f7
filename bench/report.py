"""The Markdown report: what was measured, how, on what, and the figures against targets."""

from __future__ import annotations

from dataclasses import dataclass

from bench import fast_answers, latency, throughput
from bench.config import (
    BEAM_SIZE,
    COMPUTE_TYPE,
    DEVICE,
    LANGUAGE,
    Plan,
    library_vad_parameters,
    service_settings,
)

OTHER_LOAD = "Other load (cores)"


@dataclass(frozen=True)
class Results:
    latency: list[latency.LatencyRow]
    throughput: list[throughput.ThroughputRow]
    cache_hits: fast_answers.FastAnswers
    rejections: fast_answers.FastAnswers


def render(plan: Plan, machine: dict[str, str], results: Results, elapsed_s: float) -> str:
    parts = [
        _intro(plan, elapsed_s),
        _table("### Machine", ["", ""], [[key, value] for key, value in machine.items()]),
        _setup(plan),
        _latency(results.latency),
        _throughput(results.throughput, plan),
        _cache(results.cache_hits),
        _rejections(results.rejections),
    ]
    return "\n\n".join(parts) + "\n"


def _intro(plan: Plan, elapsed_s: float) -> str:
    kind = "a quick smoke run (`--quick`)" if plan.quick else "a full run"
    return f"""## whisper_en against faster-whisper in process (`make bench`)

How much the service costs over calling the model directly. The same Whisper base model
(CTranslate2) answers the same audio bytes two ways, side by side in one run on one machine:

- **library**: faster-whisper's `WhisperModel` called in process, decoding the bytes with
  `faster_whisper.decode_audio`, as a user of the library would;
- **service**: `whisper_en` over gRPC on 127.0.0.1 (`Speech/Recognize`), started as
  `stt serve whisper_en` in its own process (its own interpreter, GIL and garbage collector,
  as deployed), configured through `WHISPER_EN_*` variables.

Measured: single-request latency per clip (target: service at most 1.03 x library),
throughput with {plan.clients} concurrent clients (target: at least 0.95 x library), the latency
of a result-cache hit (target: p50 under 5 ms) and of a `RESOURCE_EXHAUSTED` refusal when the
service is full (target: p99 under 10 ms).

Why the service answers one request in about 0.6 of the library's time, so that nobody reads
it as the service doing less: it does the same work (the texts agree), with CTranslate2 holding
fewer threads. The library here loads its model on the main thread, as its README does; that
thread keeps the OpenMP team CTranslate2 gave it while loading, so the process holds more
OpenMP threads than it has cores, and GNU libgomp then stops its threads spinning between
parallel regions: each region waits on a sleeping thread's wake-up, and the decode runs at
about the speed of one thread. `stt serve` loads the model on a thread that then ends, and
keeps its replicas' threads within the cores. The library loaded that way decodes as fast as
the service (see "Where the model is loaded" in the dynamic batching section below,
`python -m bench.loading`).

Wall times suffer from anything else running on the machine. Two columns help to read them:
**CPU time, service / library** (CPU seconds of every thread of the processes involved: client
and server for the service, the benchmark for the library), which other load barely moves, and
**{OTHER_LOAD}**, the CPU that processes outside the benchmark used while the row was measured
(out of the cores listed below; near 0 means the figures are clean).

Reproduce with `make bench` (or `python -m bench.run`; `--help` lists the knobs, `--quick` is
a smoke check that writes nothing). The clips are real speech read from `../shared/audio/`.
This section was written by {kind}, which took {elapsed_s / 60:.1f} minutes."""


def _setup(plan: Plan) -> str:
    vad = service_settings(plan.model_dir, plan.cpu_threads)
    min_speech_ms = library_vad_parameters(vad)["min_speech_duration_ms"]
    return f"""### How each side is configured

- Both: the bundled Whisper base model folder, device `{DEVICE}`, compute type
  `{COMPUTE_TYPE}`, beam size {BEAM_SIZE}, language `{LANGUAGE}` given (no detection), the
  temperature fallback schedule 0.0-1.0 (faster-whisper's default, which the service passes
  when a request sets none), `condition_on_previous_text=False` (the service's default; the
  library's default is True), no word timestamps.
- VAD, service: the core's Silero detector (threshold {vad.vad_threshold}, min silence
  {vad.vad_min_silence_ms} ms, speech pad {vad.vad_speech_pad_ms} ms, min speech
  {min_speech_ms} ms) finds speech spans; consecutive spans are packed into pieces of at most
  {vad.max_chunk_seconds:.0f} s of speech (the pauses between them left out), and each piece is
  transcribed on its own with `vad_filter=False`.
- VAD, library: `vad_filter=True` with `vad_parameters` set to the same values (its own
  defaults are min silence 2000 ms and pad 400 ms); faster-whisper joins the speech into one
  array and decodes it in 30 s windows.
- Audio: the service decodes with the core's PyAV path (float32 resampling, validity checks);
  the library with `decode_audio` (s16 resampling, then `gc.collect()`).
- Latency: one worker on each side (library `num_workers=1`, service `max_concurrency=1`),
  `cpu_threads={plan.cpu_threads}`, service cache off (`cache_size=0`). Runs alternate
  library/service, service/library per repetition; figures are medians of {plan.reps} runs
  ({plan.long_reps} for the 200 s clip) after one untimed warm-up call per side. The service
  time is what the gRPC client sees, request building included.
- Throughput: {plan.clients} client threads; library `num_workers={plan.clients}`, service
  `max_concurrency={plan.clients}`, both `cpu_threads={plan.throughput_cpu_threads}`, cache off.
  Each side runs waves of {plan.clients} simultaneous requests, the sides alternating wave by
  wave, after one untimed wave per side.
- Cache hit and refusal: `cpu_threads={plan.cpu_threads}`; the client builds one request
  around the jfk file (1.1 MB of 44.1 kHz stereo FLAC, which gRPC carries every time and the
  cache hashes) and sends it again and again."""


def _latency(rows: list[latency.LatencyRow]) -> str:
    headers = ["Clip", "Audio (s)", "Runs", "Library (s)", "Service (s)", "Service / library"]
    headers += ["Target", "Result", "CPU time, service / library", "Text WER between the two"]
    headers += [OTHER_LOAD]
    table = [
        [
            r.clip,
            f"{r.audio_s:.1f}",
            r.reps,
            f"{r.library_s:.3f}",
            f"{r.service_s:.3f}",
            f"{r.ratio:.3f}",
            f"<= {latency.TARGET_RATIO}",
            _verdict(r.passed),
            f"{r.cpu_ratio:.3f}",
            f"{r.text_wer:.3f}",
            f"{r.other_cores:.2f}",
        ]
        for r in rows
    ]
    return _table("### Latency, one request at a time (medians)", headers, table)


def _throughput(rows: list[throughput.ThroughputRow], plan: Plan) -> str:
    headers = ["Clip", "Requests per side", "Library (audio s / s)", "Service (audio s / s)"]
    headers += ["Service / library", "Target", "Result", "CPU time, service / library"]
    headers += [OTHER_LOAD]
    table = [
        [
            r.clip,
            r.requests,
            f"{r.library.audio_per_wall:.2f}",
            f"{r.service.audio_per_wall:.2f}",
            f"{r.ratio:.3f}",
            f">= {throughput.TARGET_RATIO}",
            _verdict(r.passed),
            f"{r.cpu_ratio:.3f}",
            f"{r.other_cores:.2f}",
        ]
        for r in rows
    ]
    return _table(f"### Throughput, {plan.clients} concurrent clients", headers, table)


def _cache(found: fast_answers.FastAnswers) -> str:
    target = fast_answers.CACHE_P50_TARGET_MS
    headers = ["Calls", "p50 (ms)", "p99 (ms)", "Target", "Result", OTHER_LOAD]
    row = [len(found.times_s), f"{found.p50_ms:.2f}", f"{found.p99_ms:.2f}"]
    row += [f"p50 < {target:g} ms", _verdict(found.p50_ms < target), f"{found.other_cores:.2f}"]
    title = "### Result-cache hit (the jfk request repeated after one call that fills the cache)"
    return _table(title, headers, [row])


def _rejections(found: fast_answers.FastAnswers) -> str:
    target = fast_answers.REJECT_P99_TARGET_MS
    passed = found.p99_ms < target and not found.others
    others = ", ".join(f"{code} x{count}" for code, count in found.others.items()) or "none"
    headers = ["Refused", "Other answers", "p50 (ms)", "p99 (ms)", "Target", "Result"]
    headers += [OTHER_LOAD]
    row = [len(found.times_s), others, f"{found.p50_ms:.2f}", f"{found.p99_ms:.2f}"]
    row += [f"p99 < {target:g} ms", _verdict(passed), f"{found.other_cores:.2f}"]
    title = (
        "### Refusal when full (`max_concurrency=1`, `max_queue=0`, the slot held by a 127 s "
        "request; jfk requests sent meanwhile)"
    )
    return _table(title, headers, [row])


def _table(title: str, headers: list[str], rows: list[list]) -> str:
    lines = [_row(headers), _row(["---"] * len(headers)), *(_row(row) for row in rows)]
    return f"{title}\n\n" + "\n".join(lines)


def _row(cells: list) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _verdict(passed: bool) -> str:
    return "pass" if passed else "**FAIL**"
