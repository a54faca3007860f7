"""One unary call on any model server, from arrival to answer: its request scope, readiness,
the mapping of errors to statuses, logs and metrics. The Speech servicer and the diarization
servicer both serve their calls through it, so every service refuses and counts alike."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.core import languages
from services.core.errors import SttError, to_grpc_status
from services.core.health import Lifecycle
from services.core.metrics import ServiceMetrics
from services.core.requests import REQUEST_ID_HEADER, RequestScope, abandoned_code, request_scope

log = logging.getLogger("stt.servicer")
# handler(request, context, scope, started) -> (response, language to count it under)
Handler = Callable[[Any, Any, RequestScope, float], Awaitable[tuple[Any, str]]]


class UnaryCalls:
    def __init__(
        self, service: str, rpc_service: str, lifecycle: Lifecycle, metrics: ServiceMetrics
    ):
        self._service = service
        self._rpc_service = rpc_service
        self._lifecycle = lifecycle
        self._metrics = metrics

    async def answer(self, method: str, language: str, handler: Handler, request, context):
        """Serves one call: scope, readiness, error mapping and metrics around `handler`,
        which returns the response and the language to count it under."""
        started = time.perf_counter()
        language = languages.metric_label(language)
        refusal = None
        with request_scope(method, context, self._service, self._rpc_service) as scope:
            try:
                self._lifecycle.require_ready()
                response, language = await handler(request, context, scope, started)
                context.set_trailing_metadata(((REQUEST_ID_HEADER, scope.request_id),))
                return response
            except SttError as error:
                scope.code = error.code
                self._count_rejection(error)
                log.info(
                    "request refused", extra={"code": error.code.name, "reason": error.message}
                )
                refusal = to_grpc_status(error, scope.request_id)
            except asyncio.CancelledError:
                scope.code = abandoned_code(context)
                raise
            except Exception as error:
                scope.code = grpc.StatusCode.INTERNAL
                log.exception("request failed")
                refusal = to_grpc_status(error, scope.request_id)
            finally:
                code = scope.code.name
                self._metrics.requests.labels(self._service, method, language, code).inc()
                elapsed = time.perf_counter() - started
                self._metrics.latency.labels(self._service, method).observe(elapsed)
                log.info(
                    "request finished",
                    extra={
                        "method": method,
                        "code": code,
                        "language": language,
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )
        # Answered only now, so whoever reads the metrics after the refusal finds it counted.
        await context.abort_with_status(refusal)

    def _count_rejection(self, error: SttError) -> None:
        if error.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            self._metrics.rejections.labels(self._service, "overloaded").inc()
        elif error.code is grpc.StatusCode.UNAVAILABLE:
            self._metrics.rejections.labels(self._service, "not_ready").inc()
