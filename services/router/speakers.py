"""Recognize with speaker diarization through the router.

The router asks the language service for the words (with their offsets) and the diarization
service for the speaker turns, at the same time, then labels each word with its speaker and
splits the results where the speaker changes (`services.core.speakers.label_results`). A request
that asks for diarization when no diarization service is configured is FAILED_PRECONDITION
(retrying cannot help); one whose diarization service is down or unreachable is UNAVAILABLE,
like any backend's.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from stt.v1 import stt_pb2

from services.core.calls import Call
from services.core.errors import FailedPrecondition, InvalidArgument, NoBackend
from services.core.speakers import check_bounds, label_results
from services.core.text_form import make_words_bare
from services.router.failover import Failover
from services.router.routing import DIARIZATION_BACKEND, RoutingTable

Transcribe = Callable[[stt_pb2.RecognizeRequest, Call], Awaitable[stt_pb2.RecognizeResponse]]


def wanted(config: stt_pb2.RecognitionConfig) -> bool:
    """Whether a request asks for speakers; refuses bounds that cannot be met."""
    if not config.diarization_config.enable_speaker_diarization:
        return False
    # The diarization service holds the upper limit; the router checks what needs no service.
    check_bounds(config.diarization_config, most=sys.maxsize)
    return True


def refuse_streaming(config: stt_pb2.RecognitionConfig) -> None:
    if config.diarization_config.enable_speaker_diarization:
        raise InvalidArgument(
            "config.diarization_config.enable_speaker_diarization is not supported on "
            "StreamingRecognize: speakers are told apart over the whole audio; send it to "
            "Recognize or LongRunningRecognize"
        )


class SpeakerLabels:
    def __init__(self, table: RoutingTable, failover: Failover):
        self._table = table
        self._failover = failover

    async def recognize(
        self, request: stt_pb2.RecognizeRequest, call: Call, transcribe: Transcribe
    ) -> stt_pb2.RecognizeResponse:
        self._require()
        words = stt_pb2.RecognizeRequest()
        words.CopyFrom(request)
        words.config.enable_word_time_offsets = True  # words need times to meet turns
        words.config.bare_words = False  # results split by speaker are joined from them
        words.config.ClearField("diarization_config")
        diarize = stt_pb2.DiarizeRequest(config=request.config, audio=request.audio)
        response, diarized = await _both(transcribe(words, call), self._diarize(diarize, call))
        labelled = label_results(response.results, diarized.turns)
        if request.config.bare_words:
            make_words_bare(labelled)
        del response.results[:]
        response.results.extend(labelled)
        return response

    async def diarize(self, request: stt_pb2.DiarizeRequest, call: Call) -> stt_pb2.DiarizeResponse:
        """Diarize relayed to the diarization service, with failover."""
        self._require()
        return await self._diarize(request, call)

    def _require(self) -> None:
        if not self._table.diarization:
            raise FailedPrecondition(
                "config.diarization_config.enable_speaker_diarization needs the diarization "
                "service, and this router has none configured (set ROUTER_DIARIZATION or "
                "`diarization:` in the routes file)"
            )

    async def _diarize(
        self, request: stt_pb2.DiarizeRequest, call: Call
    ) -> stt_pb2.DiarizeResponse:
        try:
            return await self._failover.call(
                call,
                (DIARIZATION_BACKEND,),
                lambda b, timeout: b.diarization.Diarize(
                    request, timeout=timeout, metadata=call.outgoing
                ),
            )
        except NoBackend as error:
            raise NoBackend(
                f"speaker diarization needs the diarization service, which could not take the "
                f"request ({self._table.diarization}): {error.message}"
            ) from None


async def _both(first: Awaitable, second: Awaitable) -> tuple:
    """Both results; the first failure cancels the other call and is raised."""
    tasks = [asyncio.ensure_future(first), asyncio.ensure_future(second)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task in done and task.exception() is not None:
                raise task.exception()
        return tasks[0].result(), tasks[1].result()
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
