"""The scope of one request on any server: its request id, its server span joined to the
caller's trace, and the context variables that put both into every log line written while it
is served. `services.core.calls` opens one for every call."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterable, Iterator

import grpc
from opentelemetry import trace

from services.core import tracing
from services.core.logs import request_id_var, trace_id_var
from services.core.names import REQUEST_ID_HEADER

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestScope:
    def __init__(self, request_id: str, span: trace.Span):
        self.request_id = request_id
        self.span = span
        self.code = grpc.StatusCode.OK

    def outgoing_metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata for a call made on this request's behalf: its id and trace context."""
        return ((REQUEST_ID_HEADER, self.request_id), *tracing.inject({}).items())


@contextlib.contextmanager
def open_scope(
    span_name: str,
    metadata: Iterable[tuple[str, str | bytes]],
    remaining_s: float | None,
    attributes: dict[str, str],
) -> Iterator[RequestScope]:
    """The scope of a request that arrived with `metadata` (gRPC metadata or HTTP headers,
    lower-case keys) and `remaining_s` until its deadline (None: no deadline)."""
    metadata = tuple(metadata)
    sent_id = next((v for k, v in metadata if k == REQUEST_ID_HEADER), "")
    request_id = sent_id if _REQUEST_ID.match(sent_id or "") else uuid.uuid4().hex
    parent = tracing.extract(metadata)
    with tracing.tracer.start_as_current_span(
        span_name, context=parent, kind=trace.SpanKind.SERVER
    ) as span:
        span.set_attribute("stt.request_id", request_id)
        for key, value in attributes.items():
            span.set_attribute(key, value)
        if remaining_s is not None:
            # The caller's deadline as it arrived here, so a trace shows it reached each hop.
            span.set_attribute("stt.deadline_s", remaining_s)
        tokens = (request_id_var.set(request_id), trace_id_var.set(tracing.trace_id_hex(span)))
        scope = RequestScope(request_id, span)
        try:
            yield scope
        finally:
            span.set_attribute("rpc.grpc.status_code", scope.code.value[0])
            trace_id_var.reset(tokens[1])
            request_id_var.reset(tokens[0])
