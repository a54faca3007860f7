"""Refusals in the OpenAI API's dialect: the HTTP status its client maps to its own error
types, OpenAI's error body, and for a full router (or a tenant past its share) `Retry-After`
(and `retry-after-ms`, which the OpenAI client prefers) with the shortest retry hint any
backend gave."""

from __future__ import annotations

import math

import grpc
from starlette.responses import JSONResponse

from services.core.errors import Overloaded, Relayed, SttError, TenantBusy
from services.core.requests import REQUEST_ID_HEADER
from services.router.dropin.openai_form import FormError, TooLarge

Code = grpc.StatusCode
STATUSES = {
    Code.INVALID_ARGUMENT: 400,
    Code.OUT_OF_RANGE: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.CANCELLED: 499,
    Code.UNIMPLEMENTED: 501,
    Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
}
TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
}
CODES = {
    401: "invalid_api_key",
    404: "model_not_found",
    413: "file_too_large",
    429: "rate_limit_exceeded",
}


def error_body(error: SttError) -> dict:
    status = http_status(error)
    param = error.param if isinstance(error, FormError) else None
    if param is None and error.reason == "UNSUPPORTED_LANGUAGE":
        param = "language"
    return {
        "error": {
            "message": error.message,
            "type": TYPES.get(status, "server_error" if status >= 500 else "requests"),
            "param": param,
            "code": CODES.get(status),
        }
    }


def error_response(error: SttError, request_id: str) -> JSONResponse:
    headers = {REQUEST_ID_HEADER: request_id}
    retry_s = retry_after_s(error)
    if retry_s is not None:
        headers["retry-after-ms"] = str(max(1, round(retry_s * 1000)))
        headers["retry-after"] = str(max(1, math.ceil(retry_s)))
    return JSONResponse(error_body(error), status_code=http_status(error), headers=headers)


def http_status(error: SttError) -> int:
    if isinstance(error, TooLarge):
        return 413
    return STATUSES.get(error.code, 500)


def retry_after_s(error: SttError) -> float | None:
    if isinstance(error, Overloaded | TenantBusy):
        return error.retry_after_s
    if isinstance(error, Relayed) and error.code is Code.RESOURCE_EXHAUSTED:
        return error.retry_after_s
    return None
