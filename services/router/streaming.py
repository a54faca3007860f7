"""StreamingRecognize through the router: the client's messages go to a backend as they come,
and the backend's answers come back as they come.

The first message (`streaming_config`) names the language, so it picks the route. Until the
backend's first answer, a refusal (full, down) may still move the stream to the next backend:
the messages sent so far are kept (up to `stream_replay_bytes`) and replayed to it. Once an
answer went back to the client the stream is never retried; its status is the client's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
from stt.v1 import stt_pb2

from services.core.calls import Call
from services.core.errors import Overloaded, SttError
from services.router.failover import Failover
from services.router.pool import BackendChannel

# A stream refused for want of a relay thread may try again about this much later.
STREAM_RETRY_S = 1.0
_END = object()


class ClientMessages:
    """The client's request stream, read once and shared by successive backend attempts."""

    def __init__(
        self,
        first: stt_pb2.StreamingRecognizeRequest,
        source: AsyncIterator[stt_pb2.StreamingRecognizeRequest],
        replay_limit_bytes: int,
    ):
        self._source = source
        self._kept = [first]
        self._kept_bytes = first.ByteSize()
        self._limit = replay_limit_bytes
        self._lock = asyncio.Lock()
        self._ended = False
        self.answered = False
        self.failure: SttError | None = None  # the client's stream broke a rule
        self._on_failure: Callable[[], None] = lambda: None

    @property
    def replayable(self) -> bool:
        return not self.answered and self._kept_bytes <= self._limit

    async def feed(self) -> AsyncIterator[stt_pb2.StreamingRecognizeRequest]:
        """One attempt's messages: those kept so far, then new ones as the client sends them."""
        index = 0
        while True:
            if index < len(self._kept):
                index += 1
                yield self._kept[index - 1]
                continue
            message, kept = await self._pull()
            if message is None:
                return
            if not kept:
                yield message
            # A kept message is yielded from the list above on the next turn, so an attempt
            # that replaces a failed one sees every message, whoever read it from the client.

    def on_failure(self, stop: Callable[[], None]) -> None:
        """`stop` (the backend call in hand) runs when the client's stream fails."""
        self._on_failure = stop
        if self.failure is not None:
            stop()

    async def _pull(self) -> tuple[stt_pb2.StreamingRecognizeRequest | None, bool]:
        async with self._lock:
            if self._ended:
                return None, False
            try:
                message = await anext(self._source)
            except StopAsyncIteration:
                self._ended = True
                return None, False
            except SttError as error:
                # Not raised here: the backend call reads this in gRPC's thread, which would
                # turn it into UNKNOWN. The call in hand is stopped; the relay raises it.
                self.failure, self._ended = error, True
                self._on_failure()
                return None, False
            self._kept_bytes += message.ByteSize()
            if not self.replayable:
                return message, False
            self._kept.append(message)
            return message, True


class StreamRelay:
    """Relays streams to backends over their synchronous-API channels (see `BackendChannel`),
    one thread each while a stream waits for its backend's next answer; at most `max_streams`
    at once, past which a stream is refused like an overloaded backend's request."""

    def __init__(self, failover: Failover, max_streams: int):
        self._failover = failover
        self._max_streams = max_streams
        self._executor = ThreadPoolExecutor(max_streams, "stream-relay")
        self.active = 0

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def relay(
        self, call: Call, chain: tuple[str, ...], messages: ClientMessages
    ) -> AsyncIterator[stt_pb2.StreamingRecognizeResponse]:
        if self.active >= self._max_streams:
            raise Overloaded(
                f"the router is relaying its limit of {self._max_streams} streams", STREAM_RETRY_S
            )
        self.active += 1
        try:
            async for response in self._attempts(call, chain, messages):
                yield response
        finally:
            self.active -= 1

    async def _attempts(
        self, call: Call, chain: tuple[str, ...], messages: ClientMessages
    ) -> AsyncIterator[stt_pb2.StreamingRecognizeResponse]:
        answers = self._failover.stream(
            call,
            chain,
            lambda backend, timeout: self._one(backend, timeout, call, messages),
            lambda: messages.replayable,
        )
        async for response in answers:
            messages.answered = True
            yield response

    async def _one(
        self, backend: BackendChannel, timeout: float, call: Call, messages: ClientMessages
    ) -> AsyncIterator[stt_pb2.StreamingRecognizeResponse]:
        loop = asyncio.get_running_loop()
        requests = _blocking(messages.feed(), loop)
        responses = backend.streams.StreamingRecognize(
            requests, timeout=timeout, metadata=call.outgoing
        )
        messages.on_failure(responses.cancel)
        try:
            while True:
                try:
                    response = await loop.run_in_executor(self._executor, next, responses, _END)
                except grpc.RpcError:
                    if messages.failure is not None:  # cancelled for the client's failure
                        raise messages.failure from None
                    raise
                if messages.failure is not None:
                    raise messages.failure
                if response is _END:
                    return
                yield response
        finally:
            responses.cancel()  # the client went away, or this attempt failed: stop it


def _blocking(
    feed: AsyncIterator[stt_pb2.StreamingRecognizeRequest], loop: asyncio.AbstractEventLoop
) -> Iterator[stt_pb2.StreamingRecognizeRequest]:
    """The feed as the plain iterator the synchronous API reads, in gRPC's own thread."""
    while True:
        message = asyncio.run_coroutine_threadsafe(anext(feed, _END), loop).result()
        if message is _END:
            return
        yield message
