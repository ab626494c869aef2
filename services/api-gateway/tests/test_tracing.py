"""Every request gets a SERVER span of berth-api-gateway, parented by the client's traceparent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from berth_kit.otlpreceiver import OtlpReceiver, SpanRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def _find(receiver: OtlpReceiver, name: str) -> SpanRecord:
    found = receiver.wait_for(
        lambda spans: next((s for s in spans if s.name == name and s.trace_id == TRACE_ID), None),
        timeout=15.0,
    )
    assert isinstance(found, SpanRecord), f"no span {name!r} in trace {TRACE_ID}: {receiver.spans!r}"
    return found


def test_traceparent_becomes_the_parent_of_the_server_span(
    gateway_factory: Any, receiver: OtlpReceiver
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with gateway_factory(env) as gw:
        traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
        response, _ = gw.request(
            "POST", "/v1.44/containers/create?name=x", b"{bad", {"traceparent": traceparent}
        )
        assert response.status == 400
        span = _find(receiver, "POST /containers/create")
    assert span.service == "berth-api-gateway"
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.parent_span_id == PARENT_ID
    assert span.attributes["http.response.status_code"] == 400
    assert span.attributes["http.route"] == "/containers/create"
