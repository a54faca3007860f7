"""LongRunningRecognize on the router: checks what can be checked cheaply, charges the tenant's
daily quota, and stores the job for a worker; the operation comes back at once.

Audio sent as `content` is probed (opened, its first frames decoded, its length read), so
bytes no decoder reads fail the call rather than the job. Audio by `uri` is read by the
worker, which may be on another machine: here the uri is held to the job URI policy
(`services/jobs/uri_policy.py`: file roots, global addresses, allowed hosts), or for an
object-store uri (`gs://`, `s3://`) to the buckets the deployment reads from, so a uri either
refuses is PERMISSION_DENIED and makes no job; the worker checks it again as it reads.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlparse

from stt.v1 import stt_pb2

from services.core import audio
from services.core.convert import audio_spec
from services.core.errors import InvalidArgument, InvalidAudio, QuotaExceeded
from services.core.speakers import check_bounds
from services.jobs.buckets import BucketPolicy, is_object_uri
from services.jobs.store import Job, Store, usage_day
from services.jobs.uri_policy import UriPolicy

MAX_URI_CHARS = 4096
URI_SCHEMES = ("file", "http", "https")


@dataclass(frozen=True)
class QuotaPolicy:
    """Daily job audio hours per tenant; 0 is no limit."""

    hours_per_day: float
    overrides: dict[str, float]

    def limit_s(self, tenant: str) -> float:
        return 3600 * self.overrides.get(tenant, self.hours_per_day)


class JobIntake:
    def __init__(
        self,
        store: Store,
        quota: QuotaPolicy,
        limits: audio.AudioLimits,
        uris: UriPolicy,
        buckets: BucketPolicy | None = None,
    ):
        self._store = store
        self._quota = quota
        self._limits = limits
        self._uris = uris
        self._buckets = buckets or BucketPolicy(())

    def submit(
        self,
        request: stt_pb2.LongRunningRecognizeRequest,
        tenant: str,
        request_id: str,
        api: str,
    ) -> Job:
        """Checks the request, charges the tenant's quota, stores the job, noting the API it
        came through (its operation answers in that API's messages). Blocking (it may resolve
        the uri's host): run it off the loop."""
        config = request.config
        spec = audio_spec(config)
        # The diarization service holds the upper bound; what needs no service is checked here.
        check_bounds(config.diarization_config, most=sys.maxsize)
        source = request.audio.WhichOneof("audio_source")
        if source is None:
            raise InvalidAudio("audio is empty: put the audio bytes in audio.content or a uri")
        content, seconds = None, None
        if source == "content":
            content = request.audio.content
            seconds = audio.probe(content, spec, self._limits)
        else:
            check_uri(request.audio.uri, self._buckets)
            if not is_object_uri(request.audio.uri):
                self._uris.check(request.audio.uri)
        self._charge(tenant, seconds)
        stored = stt_pb2.LongRunningRecognizeRequest()
        stored.CopyFrom(request)
        stored.audio.ClearField("content")
        return self._store.submit(
            uuid.uuid4().hex,
            tenant,
            stored.SerializeToString(),
            request_id,
            config.language_code,
            content,
            seconds,
            api,
        )

    def _charge(self, tenant: str, seconds: float | None) -> None:
        limit = self._quota.limit_s(tenant)
        if limit <= 0:
            return
        day = usage_day(time.time())
        if self._store.charge(tenant, day, seconds or 0.0, limit):
            return
        used = self._store.usage(tenant, day)
        asked = f"{seconds / 3600:.2f} h more" if seconds else "more audio"
        raise QuotaExceeded(
            f"tenant {tenant!r} has used {used / 3600:.2f} h of its daily quota of "
            f"{limit / 3600:g} h of job audio (UTC day {day}); this job would need {asked}",
            subject=f"tenant:{tenant}",
        )


def check_uri(uri: str, buckets: BucketPolicy | None = None) -> None:
    if len(uri) <= MAX_URI_CHARS and is_object_uri(uri):
        (buckets or BucketPolicy(())).check(uri)
        return
    parsed = urlparse(uri)
    if len(uri) > MAX_URI_CHARS or parsed.scheme not in URI_SCHEMES:
        raise InvalidArgument(
            f"audio.uri must be a gs:// or s3:// object, a file:// path or an http(s):// URL "
            f"of at most {MAX_URI_CHARS} characters, got {uri[:200]!r}"
        )
    if parsed.scheme == "file" and (parsed.netloc not in ("", "localhost") or not parsed.path):
        raise InvalidArgument(f"audio.uri {uri!r} must be file:///absolute/path")
    if parsed.scheme != "file" and not parsed.hostname:
        raise InvalidArgument(f"audio.uri {uri!r} names no host")
