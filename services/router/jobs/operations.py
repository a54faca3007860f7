"""A stored job as a google.longrunning.Operation: its metadata (progress, times, duration,
language, uri), and when it ended, its response or its error.

A job answers in the dialect of the API it came through: its response and metadata are kept
as stt.v1 messages and packed as that API's own (a Google client unpacks only
`google.cloud.speech.v1` types). The error is a `google.rpc.Status` in every dialect.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import NamedTuple

from google.longrunning import operations_pb2
from google.protobuf import any_pb2, message, timestamp_pb2
from google.rpc import status_pb2
from stt.v1 import stt_pb2

from services.core.convert import duration
from services.core.errors import InvalidArgument, SttError
from services.jobs.store import DONE, Job

STT_API = "stt"


class Dialect(NamedTuple):
    """How one API's client reads an operation: its response and metadata messages."""

    response: Callable[[stt_pb2.LongRunningRecognizeResponse], message.Message]
    metadata: Callable[[stt_pb2.LongRunningRecognizeMetadata], message.Message]


STT_DIALECT = Dialect(response=lambda found: found, metadata=lambda found: found)
STT_ONLY: Mapping[str, Dialect] = {STT_API: STT_DIALECT}


def to_operation(job: Job, dialects: Mapping[str, Dialect] = STT_ONLY) -> operations_pb2.Operation:
    dialect = dialects.get(job.api)
    if dialect is None:  # only a router of another version could have stored it
        raise SttError(f"operation {job.name} came through the {job.api!r} API, unknown here")
    operation = operations_pb2.Operation(name=job.name, done=job.done)
    operation.metadata.CopyFrom(_pack(dialect.metadata(metadata(job))))
    if job.state == DONE and job.response is not None:
        response = stt_pb2.LongRunningRecognizeResponse.FromString(job.response)
        operation.response.CopyFrom(_pack(dialect.response(response)))
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
