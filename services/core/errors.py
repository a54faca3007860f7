"""Typed errors, each carrying the gRPC status code it maps to.

Code below the servicer raises these; `to_grpc_status` is the one place that turns an error
into a gRPC status with rich details. Anything that is not an `SttError` is a bug and becomes
INTERNAL with the request id.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.core.names import REQUEST_ID_HEADER, RETRY_PUSHBACK_HEADER

ERROR_DOMAIN = "stt-suite"


class SttError(Exception):
    """Base of every error the service reports to clients on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(SttError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class InvalidAudio(InvalidArgument):
    """The audio cannot be decoded, is empty, truncated, non-finite or too large."""

    reason = "INVALID_AUDIO"


class InvalidConfig(InvalidArgument):
    reason = "INVALID_CONFIG"


class UnsupportedLanguage(InvalidArgument):
    reason = "UNSUPPORTED_LANGUAGE"


class Unauthenticated(SttError):
    """The call shows no API key, or one the server does not know."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(SttError):
    """The caller may not do this (a uri outside what jobs may read, another tenant's name), or
    the credentials the service reads with may not read what was named."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class FailedPrecondition(SttError):
    """The request needs something this deployment lacks (a service that is not configured)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class OutOfRange(SttError):
    """A stream went past one of its bounds (duration, buffered audio)."""

    code = grpc.StatusCode.OUT_OF_RANGE
    reason = "OUT_OF_RANGE"


class Overloaded(SttError):
    """Every inference slot and every queue place is taken: retry after `retry_after_s`."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "OVERLOADED"

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class QuotaExceeded(SttError):
    """A tenant's budget is spent: `subject` names what ran out (a `google.rpc.QuotaFailure`)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "QUOTA_EXCEEDED"

    def __init__(self, message: str, subject: str):
        super().__init__(message)
        self.subject = subject


class TenantBusy(QuotaExceeded):
    """A tenant has its whole share of the server's calls in flight: `subject` names the
    tenant, and it may retry after `retry_after_s`, when one of its calls may have ended."""

    reason = "TENANT_SHARE_EXCEEDED"

    def __init__(self, message: str, subject: str, retry_after_s: float):
        super().__init__(message, subject)
        self.retry_after_s = retry_after_s


class NotReady(SttError):
    """The model is still loading or warming up, or the service is draining."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "NOT_READY"


class NoBackend(SttError):
    """The router found no backend able to take the request (all down or unreachable)."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "NO_BACKEND"


class Cancelled(SttError):
    code = grpc.StatusCode.CANCELLED
    reason = "CANCELLED"


class DeadlineExceeded(SttError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class NotFound(SttError):
    """A named thing that does not exist: a model not served, an unknown or deleted operation."""

    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class Unimplemented(SttError):
    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "UNIMPLEMENTED"


class Relayed(SttError):
    """Another service's error status, passed on unchanged: the router relays a backend's
    refusal (INVALID_ARGUMENT, DEADLINE_EXCEEDED, ...) with its message and details."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        trailing_metadata: tuple[tuple[str, str], ...],
        retry_after_s: float | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.reason = code.name
        self.trailing_metadata = trailing_metadata
        self.retry_after_s = retry_after_s  # the hint a full service gave, if it gave one


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_grpc_status(error: BaseException, request_id: str) -> grpc.Status:
    """The status a client receives for `error`, with ErrorInfo (and RetryInfo when overloaded
    or a tenant is past its share, QuotaFailure when a quota or a share is spent)."""
    if isinstance(error, Relayed):
        return _relayed_status(error, request_id)
    if not isinstance(error, SttError):
        error = SttError(f"internal error (request id {request_id})")
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata={"request_id": request_id}
    )
    details = [_pack(info)]
    trailers: list[tuple[str, str]] = [(REQUEST_ID_HEADER, request_id)]
    if isinstance(error, Overloaded | TenantBusy):
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(max(1, round(error.retry_after_s * 1000)))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        trailers.append((RETRY_PUSHBACK_HEADER, str(delay.ToMilliseconds())))
    if isinstance(error, QuotaExceeded):
        violation = error_details_pb2.QuotaFailure.Violation(
            subject=error.subject, description=error.message
        )
        details.append(_pack(error_details_pb2.QuotaFailure(violations=[violation])))
    status = status_pb2.Status(
        code=getattr(code_pb2, error.code.name), message=error.message, details=details
    )
    grpc_status = rpc_status.to_status(status)
    return _Status(
        grpc_status.code, grpc_status.details, (*grpc_status.trailing_metadata, *trailers)
    )


def _relayed_status(error: Relayed, request_id: str) -> grpc.Status:
    # The backend's details (ErrorInfo, RetryInfo) already carry the request id the router
    # sent it; only the trailer is set again so it appears once.
    trailers = tuple((k, v) for k, v in error.trailing_metadata if k != REQUEST_ID_HEADER)
    return _Status(error.code, error.message, (*trailers, (REQUEST_ID_HEADER, request_id)))


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata):
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata
