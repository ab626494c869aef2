"""Shim spans reach the exporter as service berth-shim, parented to the agent's request spans."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest
from agent_testlib import client, spec
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Collector:
    """A minimal OTLP/HTTP (protobuf) trace receiver on loopback."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, bytes, bytes]] = []  # service, name, span id, parent id
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = ExportTraceServiceRequest.FromString(body)
                for rs in req.resource_spans:
                    service = next(
                        (
                            a.value.string_value
                            for a in rs.resource.attributes
                            if a.key == "service.name"
                        ),
                        "",
                    )
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            collector.spans.append((service, s.name, s.span_id, s.parent_span_id))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def test_spans(agent, collector: Collector, rootfs: Path, nats_url: str) -> None:
    agent.stop()
    agent.env.update(OTEL_EXPORTER_OTLP_ENDPOINT=collector.url, OTEL_BSP_SCHEDULE_DELAY="50")
    agent.start()
    cid = uuid.uuid4().hex * 2

    async def main() -> None:
        async with client(nats_url, agent.node) as c:
            out = await c.collect_output(cid)
            await c.run(cid, rootfs, spec("echo", "traced"))
            await c.wait_exit(cid)
            await out.wait_eof()
            await c.delete(cid)

    anyio.run(main)
    agent.stop()  # flushes both tracer providers

    by_name = {(svc, name): (sid, parent) for svc, name, sid, parent in collector.spans}
    agent_svc, shim_svc = "berth-runtime-agent", "berth-shim"
    create_id = by_name[(agent_svc, "TaskCreate")][0]
    start_id = by_name[(agent_svc, "TaskStart")][0]
    assert (agent_svc, "TaskDelete") in by_name
    assert by_name[(shim_svc, "runc create")][1] == create_id
    assert by_name[(shim_svc, "runc start")][1] == start_id
    assert by_name[(shim_svc, "container.process")][1] == start_id
    # The shim deletes runc's container as soon as the exit is reported, in the run's trace.
    assert by_name[(shim_svc, "runc delete")][1] == start_id
