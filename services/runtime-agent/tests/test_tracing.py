"""Shim spans reach the exporter as service berth-shim, parented to the agent's request spans."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from agent_testlib import client, spec
from berth_kit.otlpreceiver import OtlpReceiver


@pytest.fixture
def collector() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def test_spans(agent, collector: OtlpReceiver, rootfs: Path, nats_url: str) -> None:
    agent.stop()
    agent.env.update(OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BSP_SCHEDULE_DELAY="50")
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

    by_name = {(s.service, s.name): (s.span_id, s.parent_span_id) for s in collector.spans}
    agent_svc, shim_svc = "berth-runtime-agent", "berth-shim"
    create_id = by_name[(agent_svc, "TaskCreate")][0]
    start_id = by_name[(agent_svc, "TaskStart")][0]
    assert (agent_svc, "TaskDelete") in by_name
    assert by_name[(shim_svc, "runc create")][1] == create_id
    assert by_name[(shim_svc, "runc start")][1] == start_id
    assert by_name[(shim_svc, "container.process")][1] == start_id
    # The shim deletes runc's container as soon as the exit is reported, in the run's trace.
    assert by_name[(shim_svc, "runc delete")][1] == start_id
