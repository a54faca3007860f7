"""Reads a job's audio from an object store: `gs://bucket/object` with google-cloud-storage,
`s3://bucket/key` with boto3, within a size and a time bound, as `fetch.read_uri` does for
`file://` and `http(s)://`.

Credentials are found as each library finds them (Google's application default credentials:
GOOGLE_APPLICATION_CREDENTIALS, a mounted key, the metadata server; boto3's chain: AWS_*
variables, shared files, a web identity token), and so are emulators
(STORAGE_EMULATOR_HOST; AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3). A bucket policy is asked
before anything is sent. No such bucket or object is INVALID_ARGUMENT, credentials that may
not read it PERMISSION_DENIED, no credentials at all FAILED_PRECONDITION; a network failure,
a timeout or a server's 5xx is `Transient`, for a later attempt at the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from services.core.errors import InvalidAudio, PermissionDenied
from services.jobs.fetch import Transient
from services.jobs.object_readers import GcsReader, S3Reader, remaining

SCHEMES = ("gs", "s3")


@dataclass(frozen=True)
class ObjectRef:
    scheme: str
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"

    @property
    def bucket_uri(self) -> str:
        return f"{self.scheme}://{self.bucket}"


# Raises (PermissionDenied) for a bucket the deployment does not allow; returns otherwise.
BucketPolicy = Callable[[ObjectRef], None]


def is_object_uri(uri: str) -> bool:
    return uri.partition("://")[0].lower() in SCHEMES and "://" in uri


def parse(uri: str) -> ObjectRef:
    """`gs://bucket/path/to/object` as its parts; the object name is taken as written (an
    object store's names are not percent-encoded paths)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise InvalidAudio(f"audio.uri {uri!r} is not a gs:// or s3:// URI")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise InvalidAudio(f"audio.uri {uri!r} names no bucket: {scheme}://BUCKET/OBJECT")
    if not key:
        raise InvalidAudio(f"audio.uri {uri!r} names no object: {scheme}://{bucket}/OBJECT")
    return ObjectRef(scheme.lower(), bucket, key)


def bucket_allowlist(entries: Iterable[str]) -> BucketPolicy:
    """A policy that allows the buckets listed as `gs://name` or `s3://name` and no other."""
    allowed = set()
    for entry in entries:
        scheme, sep, name = entry.strip().rstrip("/").partition("://")
        if not sep or scheme.lower() not in SCHEMES or not name or "/" in name:
            raise ValueError(f"bucket allowlist entry {entry!r} is not gs://BUCKET or s3://BUCKET")
        allowed.add(f"{scheme.lower()}://{name}")

    def check(ref: ObjectRef) -> None:
        if ref.bucket_uri not in allowed:
            raise PermissionDenied(
                f"audio.uri {ref} is in bucket {ref.bucket_uri}, which this deployment does "
                "not read from"
            )

    return check


class ObjectStore:
    """Reads objects with one client per scheme, made on first use (a client finds its
    credentials once); thread-safe as the libraries' clients are."""

    def __init__(self, policy: BucketPolicy | None = None):
        self._policy = policy
        self._readers = {"gs": GcsReader(), "s3": S3Reader()}

    def read(self, uri: str, max_bytes: int, timeout_s: float) -> bytes:
        ref = parse(uri)
        if self._policy is not None:
            self._policy(ref)
        reader, where = self._readers[ref.scheme], str(ref)
        deadline = time.monotonic() + timeout_s
        size = reader.size(ref.bucket, ref.key, where, remaining(deadline, where, timeout_s))
        if size > max_bytes:
            raise InvalidAudio(_too_large(ref, size, max_bytes))
        parts, total = [], 0
        left = remaining(deadline, where, timeout_s)
        for block in reader.blocks(ref.bucket, ref.key, where, left):
            total += len(block)
            if total > max_bytes:  # the object grew since its size was read
                raise InvalidAudio(_too_large(ref, total, max_bytes, at_least=True))
            if time.monotonic() > deadline:
                raise Transient(f"reading {ref} took longer than {timeout_s:g} s")
            parts.append(block)
        return b"".join(parts)


def _too_large(ref: ObjectRef, size: int, limit: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"audio at {ref} is {more}{size} bytes, over the job limit of {limit} bytes"
