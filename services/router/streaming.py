"""StreamingRecognize through the router: the client's messages go to a backend as they come,
and the backend's answers come back as they come.

The first message (`streaming_config`) names the language, so it picks the route. Until the
backend's first answer, a refusal (full, down) may still move the stream to the next backend:
the messages sent so far are kept (up to `stream_replay_bytes`) and replayed to it. Once an
answer went back to the client the stream is never retried; its status is the client's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from stt.v1 import stt_pb2

from services.core.errors import DeadlineExceeded
from services.router.failover import RETRYABLE, Call, Failover, exhausted, refusal, relayed


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

    async def _pull(self) -> tuple[stt_pb2.StreamingRecognizeRequest | None, bool]:
        async with self._lock:
            if self._ended:
                return None, False
            try:
                message = await anext(self._source)
            except StopAsyncIteration:
                self._ended = True
                return None, False
            self._kept_bytes += message.ByteSize()
            if not self.replayable:
                return message, False
            self._kept.append(message)
            return message, True


async def relay_stream(
    failover: Failover, call: Call, chain: tuple[str, ...], messages: ClientMessages
) -> AsyncIterator[stt_pb2.StreamingRecognizeResponse]:
    refusals = []
    plan = failover.plan(chain)
    for position, name in enumerate(plan):
        timeout = call.remaining()
        if timeout <= 0:
            raise DeadlineExceeded(f"the deadline passed after {position} backend attempts")
        stream = failover.pool[name].speech.StreamingRecognize(
            messages.feed(), timeout=timeout, metadata=call.metadata
        )
        try:
            async for response in stream:
                messages.answered = True
                yield response
            failover.count(call, "attempts", name, grpc.StatusCode.OK)
            return
        except grpc.aio.AioRpcError as error:
            failover.count(call, "attempts", name, error.code())
            if error.code() not in RETRYABLE or not messages.replayable:
                raise relayed(error) from None
            refusals.append(refusal(name, error))
            if position + 1 < len(plan):
                failover.count(call, "failovers", name, error.code())
        finally:
            stream.cancel()
    raise exhausted(call.language, refusals)
