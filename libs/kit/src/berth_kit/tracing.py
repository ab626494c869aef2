"""OpenTelemetry set-up and W3C trace context carried in NATS headers.

Spans are exported over OTLP/HTTP only when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise the
SDK still creates real spans (so context still propagates) but exports nothing.
"""

from __future__ import annotations

import os

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span


def make_tracer_provider(service_name: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        # Imported lazily: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def setup_tracing(service_name: str) -> TracerProvider:
    """Install the global tracer provider for this process's service."""
    provider = make_tracer_provider(service_name)
    trace.set_tracer_provider(provider)
    return provider


def inject(headers: dict[str, str] | None = None, ctx: otel_context.Context | None = None) -> dict[str, str]:
    """Headers carrying the current (or given) trace context."""
    carrier: dict[str, str] = dict(headers or {})
    propagate.inject(carrier, context=ctx)
    return carrier


def extract(headers: dict[str, str] | None) -> otel_context.Context:
    return propagate.extract(headers or {})


def traceparent_of(span: Span) -> str:
    """The W3C traceparent of a span, to store with an object so later work joins its trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def context_from_traceparent(traceparent: str) -> otel_context.Context:
    if not traceparent:
        return otel_context.Context()
    return propagate.extract({"traceparent": traceparent})
