"""Object-store URIs of job audio (`gs://bucket/object`, `s3://bucket/key`) and the buckets a
deployment reads from: `JOBS_URI_ALLOWED_BUCKETS`, a group of the job URI policy read alike by
the router (which refuses a job naming another bucket when it is submitted) and the workers
(which check again before they read; see `services/jobs/worker/object_store.py`).

With no bucket listed, no object-store URI is read: a deployment opts in by naming its
buckets, as it names the folders a `file://` URI may be under.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.core.errors import InvalidAudio, PermissionDenied
from services.core.settings import SettingsGroup

SCHEMES = ("gs", "s3")
ALLOWED_BUCKETS = "JOBS_URI_ALLOWED_BUCKETS"


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


def _bucket_entry(entry: str) -> str:
    scheme, sep, name = entry.strip().rstrip("/").partition("://")
    if not sep or scheme.lower() not in SCHEMES or not name or "/" in name:
        raise ValueError(f"bucket allowlist entry {entry!r} is not gs://BUCKET or s3://BUCKET")
    return f"{scheme.lower()}://{name}"


class BucketPolicy:
    """The buckets listed (as `gs://name` or `s3://name`) and no other."""

    def __init__(self, entries: Iterable[str]):
        self._allowed = frozenset(_bucket_entry(entry) for entry in entries)

    def __call__(self, ref: ObjectRef) -> None:
        if ref.bucket_uri in self._allowed:
            return
        if not self._allowed:
            raise PermissionDenied(
                f"audio.uri {ref} is in an object store, and this deployment reads from no "
                f"bucket: list the buckets in {ALLOWED_BUCKETS}"
            )
        raise PermissionDenied(
            f"audio.uri {ref} is in bucket {ref.bucket_uri}, which this deployment does not "
            f"read from ({ALLOWED_BUCKETS})"
        )

    def check(self, uri: str) -> ObjectRef:
        """The parsed URI, once its bucket is allowed."""
        ref = parse(uri)
        self(ref)
        return ref


def bucket_allowlist(entries: Iterable[str]) -> BucketPolicy:
    return BucketPolicy(entries)


class BucketSettings(SettingsGroup):
    """The job URI policy's object-store group, read alike by the router and the workers."""

    model_config = SettingsConfigDict(env_prefix="JOBS_URI_", extra="ignore")

    allowed_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Buckets a job's gs:// or s3:// uri may name (comma-separated, "
        "`gs://name` or `s3://name`); empty: no object-store uri is read. Credentials are "
        "the libraries' own (GOOGLE_APPLICATION_CREDENTIALS, AWS_* or a mounted Secret).",
    )

    @field_validator("allowed_buckets", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            value = [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("allowed_buckets")
    @classmethod
    def _entries(cls, value: list[str]) -> list[str]:
        return [_bucket_entry(entry) for entry in value]

    def policy(self) -> BucketPolicy:
        return BucketPolicy(self.allowed_buckets)
