"""OpenTelemetry tracing: a span per request, child spans per stage, W3C context from metadata.

Export is opt-in: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-only variant) set, spans go
to that collector over OTLP/gRPC. A tracer provider installed before start-up (as tests do) is
left alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
tracer = trace.get_tracer("stt-suite")


def configure(service: str, version: str) -> None:
    endpoint_vars = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not any(os.environ.get(name) for name in endpoint_vars):
        return
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    resource = Resource.create({"service.name": service, "service.version": version})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def extract(metadata: Iterable[tuple[str, str | bytes]] | None) -> context.Context:
    """The parent context a client sent in `traceparent` / `tracestate` metadata."""
    carrier = {k: v for k, v in (metadata or ()) if isinstance(v, str)}
    return _propagator.extract(carrier=carrier)


def inject(carrier: dict[str, str]) -> dict[str, str]:
    """Adds the current context as `traceparent` to outgoing metadata."""
    _propagator.inject(carrier)
    return carrier


def trace_id_hex(span: trace.Span) -> str:
    span_context = span.get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""
