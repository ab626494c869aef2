"""One `docker run` is one trace across every service, exported over OTLP/HTTP."""

from __future__ import annotations

import pytest
from berth_kit.otlpreceiver import OtlpReceiver, SpanRecord
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SERVICES = {"berth-api-gateway", "berth-engine", "berth-lifecycle", "berth-runtime-agent", "berth-shim"}


def _orphans(spans: list[SpanRecord]) -> list[SpanRecord]:
    ids = {s.span_id for s in spans}
    return [s for s in spans if s.parent_span_id and s.parent_span_id not in ids]


def test_docker_run_is_one_trace(berth: Berth, busybox_image: str, receiver: OtlpReceiver) -> None:
    before = {s.span_id for s in receiver.spans}
    res = berth.docker("run", "--rm", busybox_image, "echo", "traced")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "traced\n"

    def create_trace(spans: list[SpanRecord]) -> str:
        for s in spans:
            if s.span_id not in before and s.service == "berth-engine" and s.name == "ContainerCreate":
                return s.trace_id
        return ""

    trace_id = str(receiver.wait_for(create_trace, timeout=10))
    assert trace_id, "no ContainerCreate span from berth-engine arrived within 10 s"

    # Spans arrive in batches from five exporters: wait until the trace is whole (every service
    # present, every parent known), then judge it.
    def whole(_: list[SpanRecord]) -> bool:
        spans = receiver.trace(trace_id)
        return SERVICES <= {s.service for s in spans} and not _orphans(spans)

    receiver.wait_for(whole, timeout=10)
    spans = receiver.trace(trace_id)
    services = {s.service for s in spans}
    assert SERVICES <= services, f"missing from the trace: {sorted(SERVICES - services)}"
    orphans = _orphans(spans)
    assert not orphans, "spans whose parent is not in the trace: " + ", ".join(
        f"{s.service}/{s.name}" for s in orphans
    )
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1, f"expected one root span, got {[(s.service, s.name) for s in roots]}"
