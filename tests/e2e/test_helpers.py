"""The harness's own parts, without a berth: the OTLP receiver and the cleanup helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from berth_kit.otlpreceiver import OtlpReceiver
from cleanup import cleanup_roots, mounts_under
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

pytestmark = pytest.mark.timeout(60)


def test_receiver_keeps_spans_from_the_real_exporter() -> None:
    with OtlpReceiver() as receiver:
        provider = TracerProvider(resource=Resource.create({"service.name": "berth-test"}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
        )
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span("parent") as parent, tracer.start_as_current_span("child"):
            pass
        provider.shutdown()
        spans = receiver.wait_for(lambda s: len(s) >= 2 and s, timeout=10)
        assert spans
        by_name = {s.name: s for s in receiver.spans}
        ctx = parent.get_span_context()
        assert by_name["parent"].trace_id == format(ctx.trace_id, "032x")
        assert by_name["parent"].span_id == format(ctx.span_id, "016x")
        assert by_name["parent"].parent_span_id == ""
        assert by_name["child"].parent_span_id == by_name["parent"].span_id
        assert {s.service for s in receiver.spans} == {"berth-test"}
        assert receiver.trace(by_name["child"].trace_id) == receiver.spans


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount")
def test_cleanup_unmounts_kills_and_removes() -> None:
    base = Path(tempfile.mkdtemp(prefix="b-", dir="/tmp"))
    (base / "m" / "inner").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(base / "m")], check=True)
    (base / "m" / "inner").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(base / "m" / "inner")], check=True)
    # A stray process that names the root, as a shim does through its environment.
    stray = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={"BERTH_EXEC_ROOT": str(base)},
        start_new_session=True,
    )
    try:
        assert len(mounts_under(base)) == 2
        # Wait until the stray shows its environment in /proc (once, under a loaded full run,
        # cleanup found nothing: make a dead or not-yet-visible stray an explicit failure).
        deadline = time.monotonic() + 10
        while str(base).encode() not in Path(f"/proc/{stray.pid}/environ").read_bytes():
            assert stray.poll() is None, f"the stray exited with {stray.returncode}"
            assert time.monotonic() < deadline, "the stray's environment never showed in /proc"
            time.sleep(0.05)
        report = cleanup_roots([base])
        assert stray.pid in report["killed"], (report, stray.poll())
        assert stray.wait(timeout=10) == -9
        assert mounts_under(base) == []
        assert not base.exists()
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait(timeout=10)
