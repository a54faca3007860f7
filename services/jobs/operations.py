"""A stored job as a google.longrunning.Operation: its metadata (progress, times, duration,
language, uri), and when it ended, its response or its error."""

from __future__ import annotations

import base64
import binascii

from google.longrunning import operations_pb2
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import status_pb2
from stt.v1 import stt_pb2

from services.core.convert import duration
from services.core.errors import InvalidArgument
from services.jobs.store import DONE, Job


def to_operation(job: Job) -> operations_pb2.Operation:
    operation = operations_pb2.Operation(name=job.name, done=job.done)
    operation.metadata.CopyFrom(_pack(metadata(job)))
    if job.state == DONE and job.response is not None:
        response = stt_pb2.LongRunningRecognizeResponse.FromString(job.response)
        operation.response.CopyFrom(_pack(response))
    elif job.done:
        operation.error.CopyFrom(status_pb2.Status(code=job.error_code, message=job.error_message))
    return operation


def metadata(job: Job) -> stt_pb2.LongRunningRecognizeMetadata:
    request = stt_pb2.LongRunningRecognizeRequest.FromString(job.request)
    found = stt_pb2.LongRunningRecognizeMetadata(
        progress_percent=job.progress,
        start_time=_timestamp(job.created),
        last_update_time=_timestamp(job.updated),
        language_code=job.language,
        uri=request.audio.uri,
    )
    if job.audio_seconds is not None:
        found.audio_duration.CopyFrom(duration(job.audio_seconds))
    return found


def page_token(job: Job) -> str:
    """An opaque token for the page after `job`: its creation time and name."""
    return base64.urlsafe_b64encode(f"{job.created!r}|{job.name}".encode()).decode()


def read_page_token(token: str) -> tuple[float, str] | None:
    if not token:
        return None
    try:
        created, _, name = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
        return float(created), name
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(f"page_token {token!r} is not one this service gave") from None


def read_done_filter(text: str) -> bool | None:
    """ListOperations' filter: empty, or `done=true` / `done=false` (spaces and case ignored)."""
    compact = "".join(text.split()).lower()
    if not compact:
        return None
    if compact in ("done=true", "done=false"):
        return compact == "done=true"
    raise InvalidArgument(f"filter {text!r} is not supported; use done=true or done=false")


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp
