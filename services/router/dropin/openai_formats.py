"""An stt.v1 answer in the OpenAI audio API's response formats: json, text, srt, vtt,
verbose_json, and the server-sent events of a streamed transcription.

A segment is one result of the answer (one portion of speech); its text, times and words
are the result's best alternative. verbose_json carries for each segment what the services
know of it: id, start, end, text, and avg_logprob (the log of its confidence, which is the
mean token probability's exponent for Whisper); the language is the BCP-47 code the service
used (`en`), where OpenAI writes its English name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from starlette.responses import JSONResponse, PlainTextResponse, Response
from stt.v1 import stt_pb2

from services.router.dropin.openai_form import AudioAsk


@dataclass(frozen=True)
class Cue:
    """One result as the OpenAI formats show it: a subtitle cue, a verbose_json segment."""

    start: float
    end: float
    text: str
    confidence: float
    words: tuple[tuple[str, float, float], ...]  # (word, start, end)


def segments(response: stt_pb2.RecognizeResponse) -> list[Cue]:
    found = []
    for result in response.results:
        if not result.alternatives:
            continue
        best = result.alternatives[0]
        words = tuple(
            (w.word, _seconds(w.start_offset), _seconds(w.end_offset)) for w in best.words
        )
        found.append(
            Cue(
                _seconds(result.result_start_offset),
                _seconds(result.result_end_offset),
                best.transcript,
                best.confidence,
                words,
            )
        )
    return found


def render(ask: AudioAsk, response: stt_pb2.RecognizeResponse) -> Response:
    parts = segments(response)
    text = " ".join(s.text for s in parts if s.text)
    duration = _seconds(response.audio_duration)
    if ask.response_format == "text":
        return PlainTextResponse(text + "\n")
    if ask.response_format == "srt":
        return PlainTextResponse(subtitles(parts, ","), media_type="application/x-subrip")
    if ask.response_format == "vtt":
        return PlainTextResponse("WEBVTT\n\n" + subtitles(parts, "."), media_type="text/vtt")
    if ask.response_format == "verbose_json":
        return JSONResponse(verbose(ask, response, parts, text))
    return JSONResponse({"text": text, "usage": usage(duration)})


def verbose(
    ask: AudioAsk, response: stt_pb2.RecognizeResponse, parts: list[Cue], text: str
) -> dict:
    duration = _seconds(response.audio_duration)
    body: dict = {
        "task": ask.task,
        "language": response.language_code,
        "duration": duration,
        "text": text,
    }
    if ask.segments:
        body["segments"] = [
            {
                "id": index,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "avg_logprob": math.log(s.confidence) if s.confidence > 0 else None,
            }
            for index, s in enumerate(parts)
        ]
    if ask.words:
        body["words"] = [
            {"word": word, "start": start, "end": end}
            for s in parts
            for word, start, end in s.words
        ]
    body["usage"] = usage(duration)
    return body


def subtitles(parts: list[Cue], decimal: str) -> str:
    """SRT cues (numbered, with a comma before the milliseconds) or WebVTT cues (a dot)."""
    cues = []
    for number, part in enumerate((p for p in parts if p.text), start=1):
        times = f"{_clock(part.start, decimal)} --> {_clock(part.end, decimal)}"
        cue = f"{times}\n{part.text}\n"
        cues.append(f"{number}\n{cue}" if decimal == "," else cue)
    return "\n".join(cues)


def usage(duration: float) -> dict:
    return {"type": "duration", "seconds": math.ceil(duration)}


def event(kind: str, **fields) -> bytes:
    """One server-sent event of a streamed transcription."""
    return f"data: {json.dumps({'type': kind, **fields})}\n\n".encode()


def error_event(body: dict) -> bytes:
    return f"event: error\ndata: {json.dumps(body)}\n\n".encode()


def _clock(seconds: float, decimal: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    whole, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{decimal}{millis:03d}"


def _seconds(offset) -> float:
    return offset.ToNanoseconds() / 1e9
