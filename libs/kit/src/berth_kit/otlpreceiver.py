"""A tiny OTLP/HTTP (protobuf) trace receiver for tests: POST /v1/traces on 127.0.0.1.

Spans are kept as plain records so tests can ask "which services took part in this trace".
The services' tests and the e2e suite use it; the e2e suite's CI stand-in for Jaeger copies this
file into its image, so it imports nothing from berth (only opentelemetry-proto).
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class SpanRecord:
    trace_id: str  # hex
    span_id: str  # hex
    parent_span_id: str  # hex, "" for a root span
    name: str
    service: str  # service.name of the resource that sent it
    kind: int = 0  # opentelemetry.proto.trace.v1.Span.SpanKind
    attributes: dict[str, Any] = field(default_factory=dict)  # the set value of each AnyValue


def _service_name(resource_attrs) -> str:  # type: ignore[no-untyped-def]
    for kv in resource_attrs:
        if kv.key == "service.name":
            return str(kv.value.string_value)
    return ""


def _scalar(value) -> Any:  # type: ignore[no-untyped-def]
    """The set field of an AnyValue: str, bool, int or float (arrays and maps as text)."""
    got = getattr(value, value.WhichOneof("value") or "string_value")
    return got if isinstance(got, str | bool | int | float) else str(got)


def decode_spans(body: bytes) -> list[SpanRecord]:
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    out = []
    for rs in req.resource_spans:
        service = _service_name(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                out.append(
                    SpanRecord(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        service=service,
                        kind=span.kind,
                        attributes={kv.key: _scalar(kv.value) for kv in span.attributes},
                    )
                )
    return out


class OtlpReceiver:
    """Start with start(), stop with stop(); `endpoint` goes into OTEL_EXPORTER_OTLP_ENDPOINT."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._spans: list[SpanRecord] = []
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/traces":
                    self._answer(404, b"", "text/plain")
                    return
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                try:
                    spans = decode_spans(body)
                except Exception:  # noqa: BLE001 - a broken export is the sender's bug: say 400
                    self._answer(400, b"", "text/plain")
                    return
                receiver._add(spans)
                self._answer(
                    200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"
                )

            def _answer(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # quiet: exporters post every 200 ms

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _add(self, spans: list[SpanRecord]) -> None:
        with self._lock:
            self._spans.extend(spans)
            self.requests += 1

    @property
    def spans(self) -> list[SpanRecord]:
        with self._lock:
            return list(self._spans)

    def trace(self, trace_id: str) -> list[SpanRecord]:
        return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(self, pred: Callable[[list[SpanRecord]], object], timeout: float = 10.0) -> object:
        """Poll until pred(spans) is truthy; returns its value, or the last falsy one on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = pred(self.spans)
            if result or time.monotonic() >= deadline:
                return result
            time.sleep(0.1)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
