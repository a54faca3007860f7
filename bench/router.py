"""Router overhead: the same cached request sent to whisper_en directly, through the router and
through a bare forwarding proxy (`bench.bare_proxy`: the floor of any Python gRPC hop), in one
run, on loopback. Writes its figures into its section of docs/benchmarks.md.

    python -m bench.router [--requests 1000] [--seconds 10] [--clients 16] [--no-write]

whisper_en, the router and the proxy run as their own processes (`stt serve`, `stt router`),
as in the cluster; this process is the client. The request is answered from whisper_en's
result cache, so inference does not mask the router's share. The paths' latency calls take
turns, so that drift in the machine's load falls on all alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from bench.docs import write_section

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT.parent / "shared" / "audio" / "en" / "platforms_one_and_three_picovoice_cheetah.wav"
PORTS = {"backend": (50161, 9161), "router": (50160, 9160)}
BARE_PROXY_PORT = 50162
PATHS = ("direct", "router", "bare proxy")
TARGETS = {"p50_ms": 1.0, "p99_ms": 3.0, "throughput": 0.9}
WARMUP = 50


def start(
    command: list[str], env: dict[str, str], module: str = "services.cli"
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *command],
        env={**os.environ, **env},
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )


def wait_serving(target: str, within_s: float = 300) -> None:
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.5)
    raise SystemExit(f"{target} did not become ready within {within_s} s")


def wait_answering(target: str, within_s: float = 60) -> None:
    """For a server without a health service: until a Recognize through it succeeds."""
    deadline = time.monotonic() + within_s
    with grpc.insecure_channel(target) as channel:
        stub = stt_pb2_grpc.SpeechStub(channel)
        while True:
            try:
                stub.Recognize(recognize_request(), timeout=30)
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def recognize_request() -> stt_pb2.RecognizeRequest:
    return stt_pb2.RecognizeRequest(
        config=stt_pb2.RecognitionConfig(language_code="en"),
        audio=stt_pb2.RecognitionAudio(content=CLIP.read_bytes()),
    )


def fill_cache(target: str) -> None:
    """Runs the one inference of the run, so every timed request is a cache hit."""
    with grpc.insecure_channel(target) as channel:
        stt_pb2_grpc.SpeechStub(channel).Recognize(recognize_request(), timeout=120)


def latencies(targets: dict[str, str], count: int) -> dict[str, list[float]]:
    """Milliseconds per call on each path, the paths' calls taking turns."""
    request = recognize_request()
    found: dict[str, list[float]] = {name: [] for name in targets}
    channels = {name: grpc.insecure_channel(target) for name, target in targets.items()}
    try:
        stubs = {name: stt_pb2_grpc.SpeechStub(channel) for name, channel in channels.items()}
        for n in range(WARMUP + count):
            for name, stub in stubs.items():
                started = time.perf_counter()
                stub.Recognize(request, timeout=30)
                if n >= WARMUP:
                    found[name].append((time.perf_counter() - started) * 1000)
    finally:
        for channel in channels.values():
            channel.close()
    return found


async def throughput(target: str, clients: int, seconds: float) -> float:
    """Requests per second from `clients` concurrent callers on one channel."""
    request = recognize_request()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = stt_pb2_grpc.SpeechStub(channel)
        await stub.Recognize(request, timeout=30)
        stop = time.perf_counter() + seconds
        done = 0

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await stub.Recognize(request, timeout=30)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(clients)))
        return done / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def measure(args: argparse.Namespace) -> dict:
    load = os.getloadavg()[0]  # other work on the machine shares its cores with all three
    (bg, bh), (rg, rh) = PORTS["backend"], PORTS["router"]
    direct, routed = f"127.0.0.1:{bg}", f"127.0.0.1:{rg}"
    backend = start(["serve", "whisper_en", "--grpc-port", str(bg), "--http-port", str(bh)], {})
    routes = {"ROUTER_BACKENDS": f"whisper_en=dns:///{direct}", "ROUTER_ROUTES": "en=whisper_en"}
    router = start(["router", "--grpc-port", str(rg), "--http-port", str(rh)], routes)
    proxy = start([str(BARE_PROXY_PORT), direct], {}, module="bench.bare_proxy")
    targets = dict(zip(PATHS, (direct, routed, f"127.0.0.1:{BARE_PROXY_PORT}"), strict=True))
    try:
        for target in (direct, routed):
            wait_serving(target)
        fill_cache(direct)
        wait_answering(targets["bare proxy"])
        before = {p.pid: cpu_seconds(p.pid) for p in (backend, router, proxy)}
        found = latencies(targets, args.requests)
        used = {pid: cpu_seconds(pid) - spent for pid, spent in before.items()}
        # Per round of turns the backend served one request per path, the others one each.
        rounds = WARMUP + args.requests
        cpu_ms = {
            "whisper_en": used[backend.pid] / (len(PATHS) * rounds) * 1000,
            "router": used[router.pid] / rounds * 1000,
            "bare proxy": used[proxy.pid] / rounds * 1000,
        }
        rates: dict[str, list[float]] = {name: [] for name in PATHS}
        for _ in range(2):  # take turns, so a burst of load elsewhere hits every path
            for name, target in targets.items():
                rates[name].append(asyncio.run(throughput(target, args.clients, args.seconds)))
    finally:
        for process in (proxy, router, backend):
            process.terminate()
            process.wait(60)
    return {"latency": found, "rates": rates, "load": load, "cpu_ms": cpu_ms}


def summary(result: dict, args: argparse.Namespace) -> str:
    found, rates, cpu = result["latency"], result["rates"], result["cpu_ms"]
    p = {name: (percentile(v, 50), percentile(v, 99)) for name, v in found.items()}
    added = (p["router"][0] - p["direct"][0], p["router"][1] - p["direct"][1])
    floor = (p["bare proxy"][0] - p["direct"][0], p["bare proxy"][1] - p["direct"][1])
    rate = {name: statistics.mean(v) for name, v in rates.items()}
    ratio = rate["router"] / rate["direct"]
    verdict = {
        "p50_ms": added[0] < TARGETS["p50_ms"],
        "p99_ms": added[1] < TARGETS["p99_ms"],
        "throughput": ratio >= TARGETS["throughput"],
    }
    ok = {True: "met", False: "NOT met"}
    size_kib = CLIP.stat().st_size / 1024
    return "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} by `python -m bench.router` on "
            f"{_machine()}, Python {platform.python_version()}, grpcio {grpc.__version__}. "
            f"Request: `Recognize` of a {size_kib:.0f} KiB WAV clip, `language_code=en`, "
            "answered from whisper_en's result cache. whisper_en, the router and the client "
            "are separate processes on one machine (1-minute load average "
            f"{result['load']:.1f} at the start).",
            "",
            f"| path | p50 ms | p99 ms | requests/s at {args.clients} clients |",
            "|---|---|---|---|",
            *(
                f"| {name} | {p[name][0]:.2f} | {p[name][1]:.2f} | {rate[name]:.0f} |"
                for name in PATHS
            ),
            "",
            f"- added latency: p50 {added[0]:.2f} ms (target < {TARGETS['p50_ms']:.0f} ms: "
            f"{ok[verdict['p50_ms']]}), p99 {added[1]:.2f} ms (target < "
            f"{TARGETS['p99_ms']:.0f} ms: {ok[verdict['p99_ms']]})",
            f"- throughput through the router: {ratio:.2f}x direct (target >= "
            f"{TARGETS['throughput']}x: {ok[verdict['throughput']]}); rounds of "
            f"{args.seconds:.0f} s, direct {_rounds(rates['direct'])}, router "
            f"{_rounds(rates['router'])} requests/s",
            f"- the floor, a bare forwarding proxy on the same grpc.aio and uvloop: p50 "
            f"{floor[0]:.2f} ms and p99 {floor[1]:.2f} ms added, "
            f"{rate['bare proxy'] / rate['direct']:.2f}x direct; rounds "
            f"{_rounds(rates['bare proxy'])} requests/s",
            f"- CPU time per request, from /proc during the latency turns: router "
            f"{cpu['router']:.2f} ms, bare proxy {cpu['bare proxy']:.2f} ms, whisper_en "
            f"{cpu['whisper_en']:.2f} ms",
            f"- {args.requests} turns of latency calls after {WARMUP} warm-up turns",
            "",
            "Reading them: a cache hit costs whisper_en about one gRPC server hop, and any proxy "
            "adds a server hop and a client hop of its own. The bare proxy shows what those hops "
            "cost in Python on this machine before any work is done; the router's figures above "
            "it are its own work (parsing, routing, failover, metrics, request id). Where client, "
            "proxy and backend share a few cores, throughput through a proxy is bounded by their "
            "summed CPU time per request; in the cluster the router has its own cores, and a "
            "request that runs inference (100 ms and more) hides its share.",
        ]
    )


def _rounds(values: list[float]) -> str:
    return " / ".join(f"{v:.0f}" for v in values)


def _machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
        model = next((ln.split(":", 1)[1].strip() for ln in lines if "model name" in ln), "")
    return f"{os.cpu_count()} CPU cores ({model or platform.machine()})"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.router", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="latency pairs to time")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each rate round")
    parser.add_argument("--clients", type=int, default=16, help="concurrent callers")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the docs")
    args = parser.parse_args()
    text = summary(measure(args), args)
    print(text)
    if not args.no_write:
        write_section("router", f"## Router overhead\n\n{text}")


if __name__ == "__main__":
    main()
