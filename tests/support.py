"""Test helpers: real servers on loopback in a background event loop, audio made on the spot,
and word error rate on normalised text."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import grpc
import jiwer
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from stt.v1 import stt_pb2, stt_pb2_grpc

from services.core.backend import Backend
from services.core.host import ServerHost as Servable
from services.core.server import SpeechServer
from services.core.settings import ServiceSettings
from services.router.server import RouterServer
from services.router.settings import RouterSettings

REPO = Path(__file__).resolve().parent.parent
AUDIO_DIR = REPO.parent / "shared" / "audio"


class RunningServer:
    """A server (a language service's or the router's) on 127.0.0.1 with free ports, served
    from its own event-loop thread."""

    def __init__(self, make: Callable[[], Servable]):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.server = self.call(_start(make))
        self.target = f"127.0.0.1:{self.server.grpc_port}"
        self.http = f"http://127.0.0.1:{self.server.http_port}"
        self.channel = grpc.insecure_channel(self.target)
        self.stub = stt_pb2_grpc.SpeechStub(self.channel)
        self.stopped = False

    def call(self, coroutine, timeout: float = 300):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def wait_loaded(self, timeout: float = 300) -> bool:
        return self.call(self.server.wait_loaded(), timeout)

    def stop(self, grace_s: float = 0) -> None:
        """Stops the server; a second call does nothing (a test may stop one early)."""
        if self.stopped:
            return
        self.stopped = True
        self.channel.close()
        self.call(self.server.drain(grace_s))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


async def _start(make: Callable[[], Servable]) -> Servable:
    server = make()  # made on the loop: grpc.aio binds what it creates to the running loop
    await server.start()
    return server


@contextlib.contextmanager
def running(service: str, settings: ServiceSettings, backend: Backend) -> Iterator[RunningServer]:
    server = RunningServer(lambda: SpeechServer(service, settings, backend))
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_diarization(settings, backend) -> Iterator[RunningServer]:
    """The diarization service on loopback; `server.diarize` is its stub."""
    from services.diarization.server import DiarizationServer

    server = RunningServer(lambda: DiarizationServer("diarization", settings, backend))
    server.diarize = stt_pb2_grpc.DiarizationStub(server.channel)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_router(settings: RouterSettings) -> Iterator[RunningServer]:
    router = RunningServer(lambda: RouterServer(settings))
    try:
        yield router
    finally:
        router.stop()


def request(content: bytes, **config) -> stt_pb2.RecognizeRequest:
    return stt_pb2.RecognizeRequest(
        config=stt_pb2.RecognitionConfig(**config),
        audio=stt_pb2.RecognitionAudio(content=content),
    )


def transcript(response: stt_pb2.RecognizeResponse) -> str:
    return " ".join(r.alternatives[0].transcript for r in response.results).strip()


_NORMALISE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.SubstituteRegexes({r"[’']": "", r"-": " "}),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(
        reference,
        hypothesis,
        reference_transform=_NORMALISE,
        hypothesis_transform=_NORMALISE,
    )


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def clip(path: str) -> bytes:
    return (AUDIO_DIR / path).read_bytes()


def manifest() -> list[dict[str, str]]:
    lines = (AUDIO_DIR / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]


def espeak(
    text: str, ssml: bool = False, rate_wpm: int = 150, voice: str = "en-us", pitch: int = 50
) -> bytes:
    """Speech synthesised by espeak-ng, as WAV bytes."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    args = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(rate_wpm), "--stdout"]
    if ssml:
        args.append("-m")
    return subprocess.run([*args, text], check=True, capture_output=True).stdout


def encode(samples: np.ndarray, rate: int, container: str, codec: str) -> bytes:
    """Mono float32 samples encoded with PyAV into a container, in memory."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=rate, layout="mono")
        fmt = stream.codec_context.codec.audio_formats[0].name
        frame = av.AudioFrame.from_ndarray(samples[np.newaxis, :].astype(np.float32), "flt", "mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate)
        for resampled in resampler.resample(frame):
            for packet in stream.encode(resampled):
                muxer.mux(packet)
        for packet in stream.encode(None):
            muxer.mux(packet)
    return out.getvalue()


def tone(seconds: float, rate: int = 16_000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def http_get(server, path: str) -> tuple[int, str]:
    """Status and body of GET `path` on a server's HTTP port (`server.http` is its base URL)."""
    try:
        with urllib.request.urlopen(server.http + path, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metric(server, name: str, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels`, read from /metrics."""
    _, body = http_get(server, "/metrics")
    total = 0.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total
