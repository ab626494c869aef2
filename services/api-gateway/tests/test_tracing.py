"""Every request gets a SERVER span of berth-api-gateway, parented by the client's traceparent."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class _Receiver(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[tuple[str, Any]] = []  # (service.name, span)
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            for resource_spans in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.server.spans.append((attrs.get("service.name", ""), span))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _find(receiver: _Receiver, name: str, deadline: float = 15.0) -> tuple[str, Any]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with receiver.lock:
            for service, span in receiver.spans:
                if span.name == name and span.trace_id.hex() == TRACE_ID:
                    return service, span
        time.sleep(0.05)
    raise AssertionError(f"no span {name!r} in trace {TRACE_ID}: {receiver.spans!r}")


def test_traceparent_becomes_the_parent_of_the_server_span(
    gateway_factory: Any, receiver: _Receiver
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
        service, span = _find(receiver, "POST /containers/create")
    assert service == "berth-api-gateway"
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.parent_span_id.hex() == PARENT_ID
    attrs = {a.key: a.value for a in span.attributes}
    assert attrs["http.response.status_code"].int_value == 400
    assert attrs["http.route"].string_value == "/containers/create"
