"""The OpenAI audio API's multipart form, read and checked, as an stt.v1 request.

Every field OpenAI documents is either mapped or refused with a 400 naming it; a field it
does not document is refused the same way. `whisper-1` (what code written for OpenAI sends)
takes the language-routed path; a backend's name (as `GET /v1/models` lists them) pins the
request to that backend; any other model is 404.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from stt.v1 import stt_pb2

from services.core.errors import InvalidArgument, NotFound

ROUTED_MODEL = "whisper-1"
FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")
# Fields of the transcription form that no service here can honour, and why.
NO_SPEAKERS = "this endpoint does not label speakers (stt.v1, Google and Riva do)"
UNSUPPORTED = {
    "include": "token log probabilities are not available",
    "keywords": "use a prompt with the words to expect",
    "languages": "give one language, or none to have it detected",
    "known_speaker_names": NO_SPEAKERS,
    "known_speaker_references": NO_SPEAKERS,
}
TRANSCRIPTION_FIELDS = {
    "file",
    "model",
    "language",
    "prompt",
    "response_format",
    "temperature",
    "timestamp_granularities",
    "stream",
    "chunking_strategy",
}
TRANSLATION_FIELDS = {"file", "model", "prompt", "response_format", "temperature"}


class FormError(InvalidArgument):
    """A bad form field; `param` names it, as OpenAI's error body does."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


class TooLarge(InvalidArgument):
    """The upload is over the size limit: INVALID_ARGUMENT, as too large audio is in stt.v1,
    and HTTP 413."""

    reason = "TOO_LARGE"


@dataclass(frozen=True)
class AudioAsk:
    """What a transcription or translation request asks for."""

    task: str  # "transcribe" or "translate"
    request: stt_pb2.RecognizeRequest
    backend: str | None  # pinned backend; None: routed by language
    response_format: str
    words: bool
    segments: bool
    stream: bool


async def read_form(request: Request, limit_bytes: int) -> FormData:
    """The request's form, refused with 413 past `limit_bytes` before more is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit_bytes:
        raise TooLarge(f"the request is {declared} bytes, over the limit of {limit_bytes}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit_bytes:
            raise TooLarge(f"the request is over the limit of {limit_bytes} bytes")

    async def replay():
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    try:
        return await Request(request.scope, replay).form()
    except Exception as error:  # the multipart parser's own errors name what is wrong
        raise FormError("file", f"the body is not a readable multipart form: {error}") from None


async def audio_ask(form: FormData, task: str, backends: list[str]) -> AudioAsk:
    allowed = TRANSCRIPTION_FIELDS if task == "transcribe" else TRANSLATION_FIELDS
    _refuse_unknown(form, allowed, task)
    config = stt_pb2.RecognitionConfig(language_code=_text(form, "language"))
    config.decoding.initial_prompt = _text(form, "prompt")
    config.decoding.translate_to_english = task == "translate"
    temperature = _temperature(form)
    if temperature is not None:
        config.decoding.temperature = temperature
    _chunking(form)
    response_format = _text(form, "response_format") or "json"
    if response_format not in FORMATS:
        raise FormError(
            "response_format", f"response_format {response_format!r}: use one of {FORMATS}"
        )
    granularities = _granularities(form, response_format)
    config.enable_word_time_offsets = "word" in granularities
    stream = _flag(form, "stream")
    if stream and response_format not in ("json", "text"):
        raise FormError("stream", "stream works with response_format json or text")
    request = stt_pb2.RecognizeRequest(config=config)
    request.audio.content = await _file(form)
    return AudioAsk(
        task=task,
        request=request,
        backend=_backend(_text(form, "model"), backends),
        response_format=response_format,
        words="word" in granularities,
        segments="segment" in granularities or not granularities,
        stream=stream,
    )


def _refuse_unknown(form: FormData, allowed: set[str], task: str) -> None:
    for key in form:
        name = key.removesuffix("[]")
        if task == "transcribe" and name in UNSUPPORTED:
            raise FormError(key, f"{key} is not supported: {UNSUPPORTED[name]}")
        if name not in allowed:
            raise FormError(key, f"{key} is not a field of this endpoint")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise FormError(name, f"{name} must be a text field, not a file")
    return (value or "").strip()


def _temperature(form: FormData) -> float | None:
    text = _text(form, "temperature")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise FormError("temperature", f"temperature {text!r} is not a number") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise FormError("temperature", f"temperature must be between 0 and 1, got {value}")
    return value


def _chunking(form: FormData) -> None:
    """`auto` is what every service does (cut at pauses found by VAD); tuning VAD per
    request is not."""
    value = _text(form, "chunking_strategy")
    if value and value != "auto":
        raise FormError(
            "chunking_strategy", "chunking_strategy: only 'auto' (cut at pauses) is supported"
        )


def _granularities(form: FormData, response_format: str) -> set[str]:
    values = [str(v) for v in form.getlist("timestamp_granularities[]")]
    values += [str(v) for v in form.getlist("timestamp_granularities")]
    for value in values:
        if value not in GRANULARITIES:
            raise FormError(
                "timestamp_granularities[]", f"timestamp granularity {value!r}: use word or segment"
            )
    if values and response_format != "verbose_json":
        raise FormError(
            "timestamp_granularities[]",
            "timestamp_granularities needs response_format verbose_json",
        )
    return set(values)


def _flag(form: FormData, name: str) -> bool:
    value = _text(form, name).lower()
    if value not in ("", "true", "false"):
        raise FormError(name, f"{name} must be true or false, got {value!r}")
    return value == "true"


async def _file(form: FormData) -> bytes:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise FormError("file", "file is required: the audio file, as a multipart file part")
    return await upload.read()


def _backend(model: str, backends: list[str]) -> str | None:
    if not model:
        raise FormError("model", "model is required")
    if model == ROUTED_MODEL:
        return None
    if model in backends:
        return model
    served = ", ".join([ROUTED_MODEL, *backends])
    raise NotFound(f"The model '{model}' does not exist; models served here: {served}")
