"""Turns streamed audio bytes into 16 kHz mono samples as they arrive.

Raw LINEAR16 / mu-law is converted message by message. A container stream (ogg/opus, webm)
is demuxed by PyAV on its own thread, reading from a pipe this side fills, so decoding starts
with the first bytes and no message is decoded twice.
"""

from __future__ import annotations

import io
import queue
import threading

import av
import numpy as np

from services.core.audio import MAX_RAW_RATE, MIN_RAW_RATE, AudioSpec, mulaw_to_float
from services.core.backend import SAMPLE_RATE
from services.core.errors import InvalidAudio, OutOfRange


def stream_decoder(spec: AudioSpec, max_buffered_bytes: int):
    if spec.encoding in ("linear16", "mulaw"):
        return RawStreamDecoder(spec)
    return ContainerStreamDecoder(max_buffered_bytes)


class RawStreamDecoder:
    def __init__(self, spec: AudioSpec):
        if not MIN_RAW_RATE <= spec.sample_rate_hertz <= MAX_RAW_RATE:
            raise InvalidAudio(
                f"streamed {spec.encoding.upper()} audio needs sample_rate_hertz between "
                f"{MIN_RAW_RATE} and {MAX_RAW_RATE}, got {spec.sample_rate_hertz}"
            )
        self._spec = spec
        self._channels = spec.channels or 1
        self._width = 2 if spec.encoding == "linear16" else 1
        self._carry = b""  # a sample split across two messages
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def feed(self, data: bytes) -> np.ndarray:
        data = self._carry + data
        frame_bytes = self._width * self._channels
        whole = len(data) - len(data) % frame_bytes
        self._carry = data[whole:]
        if whole == 0:
            return np.zeros(0, dtype=np.float32)
        if self._width == 2:
            pcm = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
        else:
            pcm = mulaw_to_float(np.frombuffer(data[:whole], dtype=np.uint8))
        mono = pcm.reshape(-1, self._channels).mean(axis=1, dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(mono[np.newaxis, :], format="flt", layout="mono")
        frame.sample_rate = self._spec.sample_rate_hertz
        return _samples(self._resampler.resample(frame))

    def abandon(self) -> None:
        """Nothing runs in the background for raw audio."""

    def close(self) -> np.ndarray:
        if self._carry:
            raise InvalidAudio(
                f"the stream ended inside a sample: {len(self._carry)} stray bytes at the end"
            )
        return _samples(self._resampler.resample(None))


class ContainerStreamDecoder:
    def __init__(self, max_buffered_bytes: int):
        self._pipe = _Pipe(max_buffered_bytes)
        self._out: queue.SimpleQueue[np.ndarray | BaseException] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="stream-decode", daemon=True)
        self._thread.start()

    def feed(self, data: bytes) -> np.ndarray:
        self._pipe.write(data)
        return self._collect()

    def close(self) -> np.ndarray:
        self._pipe.close()
        self._thread.join()
        return self._collect()

    def abandon(self) -> None:
        self._pipe.close()

    def _collect(self) -> np.ndarray:
        parts = []
        while not self._out.empty():
            item = self._out.get()
            if isinstance(item, BaseException):
                raise item
            parts.append(item)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def _run(self) -> None:
        try:
            if not self._pipe.wait_for_data():
                return  # the stream ended before any audio: nothing to decode, no error
            with av.open(self._pipe, mode="r") as container:
                if not container.streams.audio:
                    raise InvalidAudio("the streamed container holds no audio stream")
                resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
                for frame in container.decode(container.streams.audio[0]):
                    self._out.put(_samples(resampler.resample(frame)))
                self._out.put(_samples(resampler.resample(None)))
        except InvalidAudio as error:
            self._out.put(error)
        except (av.FFmpegError, ValueError) as error:
            self._out.put(InvalidAudio(f"the audio stream could not be decoded: {error}"))
        finally:
            self._pipe.close()


class _Pipe(io.RawIOBase):
    """A blocking byte pipe: the gRPC side writes, PyAV's thread reads."""

    def __init__(self, max_buffered: int):
        self._buffer = bytearray()
        self._closed = False
        self._max = max_buffered
        self._ready = threading.Condition()

    def readable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        with self._ready:
            if len(self._buffer) + len(data) > self._max:
                raise OutOfRange(
                    f"audio arrives faster than it can be decoded: over {self._max} bytes "
                    "are waiting; send at most real time"
                )
            self._buffer += data
            self._ready.notify()
        return len(data)

    def wait_for_data(self) -> bool:
        """Blocks until bytes arrive (True) or the pipe closes empty (False)."""
        with self._ready:
            while not self._buffer and not self._closed:
                self._ready.wait()
            return bool(self._buffer)

    def readinto(self, target) -> int:
        with self._ready:
            while not self._buffer and not self._closed:
                self._ready.wait()
            count = min(len(target), len(self._buffer))
            target[:count] = self._buffer[:count]
            del self._buffer[:count]
            return count

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


def _samples(frames) -> np.ndarray:
    parts = [frame.to_ndarray()[0] for frame in frames]
    return (
        np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
    )
