"""The object-store clients behind `object_store`: each reads an object's size and then its
bytes in blocks, and turns its library's errors into the job's (see `object_store`).

Clients are made on first use, since making one looks for credentials. `where` is the
object's URI, for messages.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import boto3
import botocore.exceptions as boto
import google.auth.exceptions as auth
import requests
from botocore.config import Config
from google.api_core import exceptions as api
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from services.core.errors import FailedPrecondition, InvalidAudio, PermissionDenied
from services.jobs.worker.fetch import Transient

READ_BLOCK_BYTES = 1 << 20
# Each request's own timeout never goes below this, so a nearly spent deadline still gets
# one honest attempt (the deadline check between blocks has the last word).
MIN_REQUEST_TIMEOUT_S = 0.5


def remaining(deadline: float, where: str, timeout_s: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Transient(f"reading {where} took longer than {timeout_s:g} s")
    return max(left, MIN_REQUEST_TIMEOUT_S)


class GcsReader:
    def __init__(self):
        self._lock = threading.Lock()
        self._client = None

    def size(self, bucket: str, key: str, where: str, timeout_s: float) -> int:
        blob = self._blob(bucket, key, where)
        with self._errors(bucket, where):
            blob.reload(timeout=timeout_s, retry=DEFAULT_RETRY.with_timeout(timeout_s))
        return blob.size or 0

    def blocks(self, bucket: str, key: str, where: str, timeout_s: float) -> Iterator[bytes]:
        blob = self._blob(bucket, key, where)
        retry = DEFAULT_RETRY.with_timeout(timeout_s)
        with self._errors(bucket, where):
            reader = blob.open("rb", chunk_size=READ_BLOCK_BYTES, timeout=timeout_s, retry=retry)
            with reader:
                while block := reader.read(READ_BLOCK_BYTES):
                    yield block

    def _blob(self, bucket: str, key: str, where: str):
        with self._lock:
            if self._client is None:
                self._client = _gcs_client(where)
        return self._client.bucket(bucket).blob(key)

    @contextlib.contextmanager
    def _errors(self, bucket: str, where: str):
        try:
            yield
        except api.NotFound:
            raise InvalidAudio(self._not_found(bucket, where)) from None
        except (api.Forbidden, api.Unauthorized) as error:
            raise PermissionDenied(
                f"the worker's credentials may not read {where}: {error}"
            ) from None
        except (api.ServerError, api.TooManyRequests, api.RetryError) as error:
            raise Transient(f"reading {where} failed: {error}") from None
        except api.ClientError as error:
            raise InvalidAudio(f"audio.uri {where} could not be read: {error}") from None
        except auth.RefreshError as error:
            raise FailedPrecondition(
                f"the worker's Google credentials are refused: {error}"
            ) from None
        except (auth.TransportError, requests.RequestException, OSError) as error:
            raise Transient(f"reading {where} failed: {error}") from None

    def _not_found(self, bucket: str, where: str) -> str:
        """Which of the two is missing, when the credentials may ask about the bucket."""
        try:
            exists = self._client.bucket(bucket).exists(timeout=MIN_REQUEST_TIMEOUT_S * 4)
        except (api.GoogleAPICallError, auth.GoogleAuthError, requests.RequestException):
            # A reader need not be allowed to look at buckets: say it may be either.
            return f"audio.uri {where} names no object (or its bucket does not exist)"
        if not exists:
            return f"audio.uri {where} is in bucket gs://{bucket}, which does not exist"
        return f"audio.uri {where} names no object in bucket gs://{bucket}"


def _gcs_client(where: str):
    try:
        return storage.Client()
    except auth.DefaultCredentialsError as error:
        raise FailedPrecondition(
            f"reading {where} needs Google Cloud credentials on the worker (a service account "
            f"key in GOOGLE_APPLICATION_CREDENTIALS, or workload identity): {error}"
        ) from None


class S3Reader:
    def __init__(self):
        self._lock = threading.Lock()
        self._clients: dict[float, object] = {}

    def size(self, bucket: str, key: str, where: str, timeout_s: float) -> int:
        client = self._client(timeout_s)
        with self._errors(client, bucket, where):
            return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])

    def blocks(self, bucket: str, key: str, where: str, timeout_s: float) -> Iterator[bytes]:
        client = self._client(timeout_s)
        with self._errors(client, bucket, where):
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            with contextlib.closing(body):
                yield from body.iter_chunks(READ_BLOCK_BYTES)

    def _client(self, timeout_s: float):
        # One client per timeout, rounded up to a whole second so they stay few: botocore
        # sets timeouts per client, not per call.
        rounded = float(max(1, -int(-timeout_s // 1)))
        with self._lock:
            if rounded not in self._clients:
                self._clients[rounded] = _s3_client(rounded)
            return self._clients[rounded]

    @contextlib.contextmanager
    def _errors(self, client, bucket: str, where: str):
        try:
            yield
        except boto.ClientError as error:
            raise _s3_client_error(client, error, bucket, where) from None
        except (boto.NoCredentialsError, boto.PartialCredentialsError) as error:
            raise FailedPrecondition(
                f"reading {where} needs AWS credentials on the worker (AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, a shared credentials file, or a web identity): {error}"
            ) from None
        except boto.ParamValidationError as error:
            raise InvalidAudio(f"audio.uri {where} could not be read: {error}") from None
        except (boto.BotoCoreError, OSError) as error:
            raise Transient(f"reading {where} failed: {error}") from None


def _s3_client_error(client, error, bucket: str, where: str) -> Exception:
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code == "NoSuchBucket":
        return InvalidAudio(f"audio.uri {where} is in bucket s3://{bucket}, which does not exist")
    if code in ("NoSuchKey", "404", "NotFound") or status == 404:
        return InvalidAudio(_s3_not_found(client, bucket, where))
    if code in ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return PermissionDenied(f"the worker's credentials may not read {where}: {error}")
    if status >= 500 or status == 429 or code in ("SlowDown", "RequestTimeout", "Throttling"):
        return Transient(f"reading {where} failed: {error}")
    return InvalidAudio(f"audio.uri {where} could not be read: {error}")


def _s3_not_found(client, bucket: str, where: str) -> str:
    """A HEAD's 404 says nothing of which is missing: ask about the bucket."""
    try:
        client.head_bucket(Bucket=bucket)
    except boto.ClientError as error:
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if status == 404:
            return f"audio.uri {where} is in bucket s3://{bucket}, which does not exist"
        return f"audio.uri {where} names no object (or its bucket does not exist)"
    except boto.BotoCoreError:
        return f"audio.uri {where} names no object (or its bucket does not exist)"
    return f"audio.uri {where} names no object in bucket s3://{bucket}"


def _s3_client(timeout_s: float):
    # Two attempts at most: a job that fails here is tried again later anyway.
    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"mode": "standard", "max_attempts": 2},
    )
    return boto3.session.Session().client("s3", config=config)
