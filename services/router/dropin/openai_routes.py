"""The OpenAI audio API on the router's HTTP port, for the `openai` package with
`base_url="http://HOST:PORT/v1"`: transcriptions, translations (where the backend can
translate into English) and the models served.

A transcription is the router's Recognize; with `stream=true` it is the router's
StreamingRecognize fed with the file, each final result (an utterance ended by a pause of
2 s or more) sent as a `transcript.text.delta` event as soon as the backend gives it, then
`transcript.text.done`.

Every request is a call in the router's call scope, entered before its form is read: where
the router asks for API keys, a request without one (the client's `api_key`, sent as
`Authorization: Bearer KEY`) is refused with 401 before its upload is read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from stt.v1 import stt_pb2

from services.core.calls import Call, CallScope, Incoming, Refusal
from services.core.errors import NotFound
from services.core.names import REQUEST_ID_HEADER
from services.router.dropin import openai_form as form
from services.router.dropin import openai_formats as formats
from services.router.dropin.openai_errors import error_body, error_response
from services.router.path import RequestPath

API = "openai"
CHUNK_BYTES = 64 * 1024  # the file goes to a stream in messages of this size
# A file is not live speech: a longer pause than a live stream's ends an utterance, so each
# decode has more context (fewer, better finals) and the file costs about what Recognize does.
FILE_PAUSE_MS = 2000
OWNER = "stt-suite"


def openai_routes(calls: CallScope, path: RequestPath, max_request_bytes: int) -> list[Route]:
    audio = OpenAIAudio(calls, path, max_request_bytes)
    return [
        Route("/v1/audio/transcriptions", audio.transcriptions, methods=["POST"]),
        Route("/v1/audio/translations", audio.translations, methods=["POST"]),
        Route("/v1/models", audio.models, methods=["GET"]),
        Route("/v1/models/{model:path}", audio.model, methods=["GET"]),
    ]


class OpenAIAudio:
    def __init__(self, calls: CallScope, path: RequestPath, max_request_bytes: int):
        self._calls = calls
        self._path = path
        self._max_request_bytes = max_request_bytes
        self._started = int(time.time())  # a model's "created": when this router began

    async def transcriptions(self, request: Request) -> Response:
        return await self._audio(request, "transcribe")

    async def translations(self, request: Request) -> Response:
        return await self._audio(request, "translate")

    async def models(self, request: Request) -> Response:
        async def listing(call: Call) -> Response:
            languages = await self._languages()
            data = [self._model(name, languages) for name in self._names()]
            return JSONResponse({"object": "list", "data": data})

        return await self._describe(request, "ListModels", listing)

    async def model(self, request: Request) -> Response:
        name = request.path_params["model"]

        async def one(call: Call) -> Response:
            if name not in self._names():
                raise NotFound(f"The model '{name}' does not exist")
            return JSONResponse(self._model(name, await self._languages()))

        return await self._describe(request, "GetModel", one)

    def _names(self) -> list[str]:
        return [form.ROUTED_MODEL, *self._path.backends]

    async def _languages(self) -> dict[str, list[str]]:
        """The languages of each model: the router's for the routed one, each backend's own
        (empty for one that does not answer)."""
        described = await self._path.describe()
        languages = {b.backend_name: list(b.language_codes) for b in described.backends}
        languages[form.ROUTED_MODEL] = list(described.language_codes)
        return languages

    def _model(self, name: str, languages: dict[str, list[str]]) -> dict:
        # `languages` is this server's addition to OpenAI's model object (clients keep it).
        return {
            "id": name,
            "object": "model",
            "created": self._started,
            "owned_by": OWNER,
            "languages": languages.get(name, []),
        }

    async def _describe(
        self, request: Request, method: str, work: Callable[[Call], Awaitable[Response]]
    ) -> Response:
        """A call that describes what the router serves, in the call scope like any other (a
        key is needed where the router asks for keys), answered while the router loads."""
        try:
            async with self._calls.serving(method, _incoming(request), needs_ready=False) as call:
                call.language = "none"
                answer = await work(call)
                answer.headers[REQUEST_ID_HEADER] = call.request_id
                return answer
        except Refusal as refusal:
            return error_response(refusal.error, refusal.request_id)

    async def _audio(self, request: Request, task: str) -> Response:
        """Serves the call in a task of its own (its request scope lives in one task, and a
        stream's events are sent from another): a whole answer comes back at once, a stream as
        events as they come, or as an HTTP error if it fails before its first event."""
        items: asyncio.Queue = asyncio.Queue()
        producer = asyncio.create_task(self._serve(request, task, items))
        head = await items.get()
        headers = {}
        if isinstance(head, str):  # a stream: its request id comes first
            headers[REQUEST_ID_HEADER] = head
            head = await items.get()
        if isinstance(head, Response):  # the answer, or a refusal
            await producer
            return head

        async def body() -> AsyncIterator[bytes]:
            item = head
            try:
                while item is not None:
                    yield item
                    item = await items.get()
            finally:  # the client went away, or the stream ended: stop the backend call
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)

        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    async def _serve(self, request: Request, task: str, items: asyncio.Queue) -> None:
        """The call: its form read once the call scope admitted it (its key checked), then
        Recognize, or StreamingRecognize when the form asks for a stream."""
        texts: list[str] = []
        try:
            async with self._calls.serving("Recognize", _incoming(request)) as call:
                fields = await form.read_form(request, self._max_request_bytes)
                ask = await form.audio_ask(fields, task, self._path.backends)
                if not ask.stream:
                    response = await self._path.recognize(call, ask.request, ask.backend)
                    answer = formats.render(ask, response)
                    answer.headers[REQUEST_ID_HEADER] = call.request_id
                    items.put_nowait(answer)
                    return
                call.method = "StreamingRecognize"
                items.put_nowait(call.request_id)
                first, rest = _stream_messages(ask.request)
                async for response in self._path.stream(call, first, rest, ask.backend):
                    for text in _final_texts(response):
                        delta = f" {text}" if texts else text
                        texts.append(text)
                        items.put_nowait(formats.event("transcript.text.delta", delta=delta))
                items.put_nowait(formats.event("transcript.text.done", text=" ".join(texts)))
        except Refusal as refusal:
            if texts:
                items.put_nowait(formats.error_event(error_body(refusal.error)))
            else:
                items.put_nowait(error_response(refusal.error, refusal.request_id))
        finally:
            items.put_nowait(None)


def _stream_messages(
    request: stt_pb2.RecognizeRequest,
) -> tuple[stt_pb2.StreamingRecognizeRequest, AsyncIterator[stt_pb2.StreamingRecognizeRequest]]:
    streaming = stt_pb2.StreamingRecognitionConfig(config=request.config)
    streaming.speech_end_timeout.FromMilliseconds(FILE_PAUSE_MS)
    first = stt_pb2.StreamingRecognizeRequest(streaming_config=streaming)
    content = request.audio.content

    async def audio() -> AsyncIterator[stt_pb2.StreamingRecognizeRequest]:
        for start in range(0, len(content), CHUNK_BYTES):
            yield stt_pb2.StreamingRecognizeRequest(
                audio_content=content[start : start + CHUNK_BYTES]
            )

    return first, audio()


def _final_texts(response: stt_pb2.StreamingRecognizeResponse) -> list[str]:
    return [
        r.alternatives[0].transcript
        for r in response.results
        if r.is_final and r.alternatives and r.alternatives[0].transcript
    ]


def _incoming(request: Request) -> Incoming:
    headers = tuple((key.lower(), value) for key, value in request.headers.items())
    return Incoming(API, f"{request.method} {request.url.path}", headers, None)
