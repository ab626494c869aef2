"""The container's own trace: later work is a child of the create span, linked to its request."""

from collections.abc import Callable
from typing import Any

from berth_engine.containers.records import Record
from berth_engine.core import EngineCore
from berth_kit.tracing import traceparent_of
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def test_container_span_joins_the_create_trace(make_record: Callable[..., Record]) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    unused: Any = None
    core = EngineCore(
        unused, unused, unused, unused, "node",
        volumes=unused, networks=unused, restarter=unused, tracer=tracer,
    )  # fmt: skip

    rec = make_record("traced")
    with tracer.start_as_current_span("container create") as create:
        rec.traceparent = traceparent_of(create)
    with tracer.start_as_current_span("ContainerStart") as request:
        with core.container_span(rec, "container start"):
            pass
    with core.container_span(rec, "container exit"):  # e.g. from reconcile: no request
        pass

    spans = {s.name: s for s in exporter.get_finished_spans()}
    created = spans["container create"].context
    for name in ("container start", "container exit"):
        span = spans[name]
        assert span.context.trace_id == created.trace_id
        assert span.parent is not None and span.parent.span_id == created.span_id
        assert span.attributes is not None and span.attributes["container.id"] == rec.id
    start_links = spans["container start"].links
    assert [link.context.span_id for link in start_links] == [request.get_span_context().span_id]
    assert spans["container exit"].links == ()
