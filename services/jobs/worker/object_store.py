"""Reads a job's audio from an object store: `gs://bucket/object` with google-cloud-storage,
`s3://bucket/key` with boto3, within a size and a time bound, as `fetch.read_uri` does for
`file://` and `http(s)://`.

Credentials are found as each library finds them (Google's application default credentials:
GOOGLE_APPLICATION_CREDENTIALS, a mounted key, the metadata server; boto3's chain: AWS_*
variables, shared files, a web identity token), and so are emulators
(STORAGE_EMULATOR_HOST; AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3). The bucket policy
(`services/jobs/buckets.py`) is asked before anything is sent. No such bucket or object is
INVALID_ARGUMENT, credentials that may not read it PERMISSION_DENIED, no credentials at all
FAILED_PRECONDITION; a network failure, a timeout or a server's 5xx is `Transient`, for a
later attempt at the job.
"""

from __future__ import annotations

import time

from services.core.errors import InvalidAudio
from services.jobs.buckets import BucketPolicy, parse
from services.jobs.worker.fetch import read_bounded, too_large
from services.jobs.worker.object_readers import GcsReader, S3Reader, remaining


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
            raise InvalidAudio(too_large(where, size, max_bytes))
        left = remaining(deadline, where, timeout_s)
        # Bounded again as it comes: the object may have grown since its size was read.
        blocks = reader.blocks(ref.bucket, ref.key, where, left)
        return read_bounded(blocks, where, max_bytes, deadline, timeout_s)
