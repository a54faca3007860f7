"""Router overhead: the same cached request sent to whisper_en directly, through the router,
through a second router serving TLS and asking for an API key (what security costs a
request), and through a bare forwarding proxy (`bench.bare_proxy`: the floor of any Python
gRPC hop), in one run, on loopback. Writes its figures into its section of docs/benchmarks.md.

    python -m bench.router [--requests 1000] [--seconds 10] [--clients 16] [--port-offset 0]
                           [--no-write]

whisper_en, the routers and the proxy run as their own processes (`stt serve`, `stt router`),
as in the cluster; this process is the client (one channel per path, so a TLS handshake is
made once, as a real client's long-lived channel makes it). The request is answered from
whisper_en's result cache, so inference does not mask the router's share. The paths' latency
calls take turns, so that drift in the machine's load falls on all alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from bench.docs import write_section
from services.router import keys

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT.parent / "shared" / "audio" / "en" / "platforms_one_and_three_picovoice_cheetah.wav"
PORTS = {"backend": (50161, 9161), "router": (50160, 9160), "secure router": (50163, 9163)}
BARE_PROXY_PORT = 50162
SECURE = "router, TLS + key"
PATHS = ("direct", "router", SECURE, "bare proxy")
TARGETS = {"p50_ms": 1.0, "p99_ms": 3.0, "throughput": 0.9, "security_p50_ms": 0.3}
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


@dataclass(frozen=True)
class PathClient:
    """How a path is called: its target, its TLS (None: plain text) and its metadata."""

    target: str
    credentials: grpc.ChannelCredentials | None = None
    metadata: tuple[tuple[str, str], ...] = ()

    def channel(self) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(self.target)
        return grpc.secure_channel(self.target, self.credentials)

    def aio_channel(self) -> grpc.aio.Channel:
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.target)
        return grpc.aio.secure_channel(self.target, self.credentials)


def security_files(folder: Path, grpc_port: int) -> tuple[dict[str, str], PathClient]:
    """A certificate for 127.0.0.1, its CA, and a keys file with one key: the secure router's
    variables, and how a client calls it."""
    authority = trustme.CA()
    leaf = authority.issue_cert("127.0.0.1")
    cert, key_file, keys_file = folder / "tls.crt", folder / "tls.key", folder / "keys"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key_file.write_bytes(leaf.private_key_pem.bytes())
    key, line = keys.new_key("bench")
    keys_file.write_text(line + "\n")
    env = {
        "ROUTER_TLS_CERT_FILE": str(cert),
        "ROUTER_TLS_KEY_FILE": str(key_file),
        "ROUTER_API_KEYS_FILE": str(keys_file),
    }
    credentials = grpc.ssl_channel_credentials(authority.cert_pem.bytes())
    path = PathClient(f"127.0.0.1:{grpc_port}", credentials, (("authorization", f"Bearer {key}"),))
    return env, path


def wait_serving(path: PathClient, within_s: float = 300) -> None:
    with path.channel() as channel:
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
    raise SystemExit(f"{path.target} did not become ready within {within_s} s")


def wait_answering(path: PathClient, within_s: float = 60) -> None:
    """For a server without a health service: until a Recognize through it succeeds."""
    deadline = time.monotonic() + within_s
    with path.channel() as channel:
        stub = stt_pb2_grpc.SpeechStub(channel)
        while True:
            try:
                stub.Recognize(recognize_request(), timeout=30, metadata=path.metadata)
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


def latencies(paths: dict[str, PathClient], count: int) -> dict[str, list[float]]:
    """Milliseconds per call on each path, the paths' calls taking turns."""
    request = recognize_request()
    found: dict[str, list[float]] = {name: [] for name in paths}
    channels = {name: path.channel() for name, path in paths.items()}
    try:
        stubs = {name: stt_pb2_grpc.SpeechStub(channel) for name, channel in channels.items()}
        for n in range(WARMUP + count):
            for name, stub in stubs.items():
                metadata = paths[name].metadata
                started = time.perf_counter()
                stub.Recognize(request, timeout=30, metadata=metadata)
                if n >= WARMUP:
                    found[name].append((time.perf_counter() - started) * 1000)
    finally:
        for channel in channels.values():
            channel.close()
    return found


async def throughput(path: PathClient, clients: int, seconds: float) -> float:
    """Requests per second from `clients` concurrent callers on one channel."""
    request = recognize_request()
    async with path.aio_channel() as channel:
        stub = stt_pb2_grpc.SpeechStub(channel)
        await stub.Recognize(request, timeout=30, metadata=path.metadata)
        stop = time.perf_counter() + seconds
        done = 0

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await stub.Recognize(request, timeout=30, metadata=path.metadata)
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
    with tempfile.TemporaryDirectory() as folder:
        return _measure(args, Path(folder))


def ports(offset: int) -> tuple[dict[str, tuple[int, int]], int]:
    """The run's ports, moved by `offset`; each must be free, or another server (another run
    left behind) would answer in place of this run's."""
    moved = {name: (g + offset, h + offset) for name, (g, h) in PORTS.items()}
    proxy = BARE_PROXY_PORT + offset
    for port in (*(p for pair in moved.values() for p in pair), proxy):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                message = f"port {port} is taken: stop what holds it, or use --port-offset"
                raise SystemExit(message) from None
    return moved, proxy


def _measure(args: argparse.Namespace, folder: Path) -> dict:
    load = os.getloadavg()[0]  # other work on the machine shares its cores with all of them
    run_ports, proxy_port = ports(args.port_offset)
    (bg, bh), (rg, rh) = run_ports["backend"], run_ports["router"]
    sg, sh = run_ports["secure router"]
    direct = f"127.0.0.1:{bg}"
    backend = start(["serve", "whisper_en", "--grpc-port", str(bg), "--http-port", str(bh)], {})
    routes = {"ROUTER_BACKENDS": f"whisper_en=dns:///{direct}", "ROUTER_ROUTES": "en=whisper_en"}
    router = start(["router", "--grpc-port", str(rg), "--http-port", str(rh)], routes)
    security, secure_path = security_files(folder, sg)
    secure = start(["router", "--grpc-port", str(sg), "--http-port", str(sh)], routes | security)
    proxy = start([str(proxy_port), direct], {}, module="bench.bare_proxy")
    paths = {
        "direct": PathClient(direct),
        "router": PathClient(f"127.0.0.1:{rg}"),
        SECURE: secure_path,
        "bare proxy": PathClient(f"127.0.0.1:{proxy_port}"),
    }
    processes = {"router": router, SECURE: secure, "bare proxy": proxy}
    try:
        for name in ("direct", "router", SECURE):
            wait_serving(paths[name])
        fill_cache(direct)
        wait_answering(paths["bare proxy"])
        before = {p.pid: cpu_seconds(p.pid) for p in (backend, *processes.values())}
        found = latencies(paths, args.requests)
        used = {pid: cpu_seconds(pid) - spent for pid, spent in before.items()}
        # Per round of turns the backend served one request per path, the others one each.
        rounds = WARMUP + args.requests
        cpu_ms = {name: used[p.pid] / rounds * 1000 for name, p in processes.items()}
        cpu_ms["whisper_en"] = used[backend.pid] / (len(PATHS) * rounds) * 1000
        rates: dict[str, list[float]] = {name: [] for name in PATHS}
        for _ in range(2):  # take turns, so a burst of load elsewhere hits every path
            for name, path in paths.items():
                rates[name].append(asyncio.run(throughput(path, args.clients, args.seconds)))
    finally:
        for process in (proxy, secure, router, backend):
            process.terminate()
            process.wait(60)
    return {
        "latency": found,
        "rates": rates,
        "load": load,
        "load_end": os.getloadavg()[0],
        "cpu_ms": cpu_ms,
    }


def summary(result: dict, args: argparse.Namespace) -> str:
    found, rates, cpu = result["latency"], result["rates"], result["cpu_ms"]
    p = {name: (percentile(v, 50), percentile(v, 99)) for name, v in found.items()}
    added = (p["router"][0] - p["direct"][0], p["router"][1] - p["direct"][1])
    floor = (p["bare proxy"][0] - p["direct"][0], p["bare proxy"][1] - p["direct"][1])
    security = (p[SECURE][0] - p["router"][0], p[SECURE][1] - p["router"][1])
    rate = {name: statistics.mean(v) for name, v in rates.items()}
    ratio = rate["router"] / rate["direct"]
    verdict = {
        "p50_ms": added[0] < TARGETS["p50_ms"],
        "p99_ms": added[1] < TARGETS["p99_ms"],
        "throughput": ratio >= TARGETS["throughput"],
        "security_p50_ms": security[0] < TARGETS["security_p50_ms"],
    }
    ok = {True: "met", False: "NOT met"}
    size_kib = CLIP.stat().st_size / 1024
    return "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} by `python -m bench.router` on "
            f"{_machine()}, Python {platform.python_version()}, grpcio {grpc.__version__}. "
            f"Request: `Recognize` of a {size_kib:.0f} KiB WAV clip, `language_code=en`, "
            "answered from whisper_en's result cache. whisper_en, the routers and the client "
            "are separate processes on one machine (1-minute load average "
            f"{result['load']:.1f} at the start, {result['load_end']:.1f} at the end). "
            f"`{SECURE}` is a second router serving TLS (a trustme certificate) and asking "
            "for an API key (a keys file of one key), called with the key.",
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
            f"- TLS and the key check on the router: p50 {security[0]:+.2f} ms, p99 "
            f"{security[1]:+.2f} ms over the plain-text router (target < "
            f"{TARGETS['security_p50_ms']} ms at p50: {ok[verdict['security_p50_ms']]}); "
            f"{rate[SECURE] / rate['router']:.2f}x its throughput; rounds "
            f"{_rounds(rates[SECURE])} requests/s; CPU {cpu[SECURE]:.2f} ms per request",
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
            "request that runs inference (100 ms and more) hides its share. TLS costs a "
            "handshake per connection (once per channel, before the turns) and the encryption "
            "of each message; the key check is a SHA-256 of the key and a constant-time "
            "comparison with each key of the file, per call.",
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
    parser.add_argument(
        "--port-offset", type=int, default=0, help="move every port of the run by this much"
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not write the docs")
    args = parser.parse_args()
    text = summary(measure(args), args)
    print(text)
    if not args.no_write:
        write_section("router", f"## Router overhead\n\n{text}")


if __name__ == "__main__":
    main()
