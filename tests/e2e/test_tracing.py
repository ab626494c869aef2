"""One `docker run` is one trace across every service, exported over OTLP/HTTP."""

from __future__ import annotations

import pytest
from harness import Berth
from otlp_receiver import SpanRecord

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SERVICES = {"berth-api-gateway", "berth-engine", "berth-lifecycle", "berth-runtime-agent", "berth-shim"}


def test_docker_run_is_one_trace(berth: Berth, busybox_image: str) -> None:
    before = {s.span_id for s in berth.receiver.spans}
    res = berth.docker("run", "--rm", busybox_image, "echo", "traced")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "traced\n"

    def create_trace() -> str:
        for s in berth.receiver.spans:
            if s.span_id not in before and s.service == "berth-engine" and s.name == "ContainerCreate":
                return s.trace_id
        return ""

    trace_id = berth.receiver.wait_for(lambda _: create_trace(), timeout=10)
    assert trace_id, "no ContainerCreate span from berth-engine arrived within 10 s"

    def complete(_: list[SpanRecord]) -> bool:
        return SERVICES <= {s.service for s in berth.receiver.trace(str(trace_id))}

    berth.receiver.wait_for(complete, timeout=10)
    spans = berth.receiver.trace(str(trace_id))
    services = {s.service for s in spans}
    assert SERVICES <= services, f"missing from the trace: {sorted(SERVICES - services)}"

    ids = {s.span_id for s in spans}
    orphans = [s for s in spans if s.parent_span_id and s.parent_span_id not in ids]
    # Give late exports (the shim's exit span, the gateway's wait) one more chance.
    if orphans:
        berth.receiver.wait_for(
            lambda _: all(
                s.parent_span_id in {x.span_id for x in berth.receiver.trace(str(trace_id))}
                for s in berth.receiver.trace(str(trace_id))
                if s.parent_span_id
            ),
            timeout=5,
        )
        spans = berth.receiver.trace(str(trace_id))
        ids = {s.span_id for s in spans}
        orphans = [s for s in spans if s.parent_span_id and s.parent_span_id not in ids]
    assert not orphans, "spans whose parent is not in the trace: " + ", ".join(
        f"{s.service}/{s.name}" for s in orphans
    )
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1, f"expected one root span, got {[(s.service, s.name) for s in roots]}"
