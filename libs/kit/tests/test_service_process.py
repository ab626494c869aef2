"""berth_kit.testing's ServiceProcess: started means answering Ping; a process that dies says so."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from berth_kit.testing import ServiceProcess, nats_server


def test_a_service_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    with nats_server() as url:
        gone = ServiceProcess("berth_no_such_module", "berth-nothing", url, {}, tmp_path / "log")
        with pytest.raises(RuntimeError, match=r"berth-nothing exited with 1: .*No module named"):
            gone.start(within=20)
        assert gone.stop() == 1


def test_a_service_is_started_once_it_answers_ping(tmp_path: Path) -> None:
    # A service of its own: it answers Ping only after a second of set-up.
    (tmp_path / "berth_slow_service.py").write_text(
        "import anyio\n"
        "from berth_kit.service import run_service\n"
        "async def main(ctx):\n"
        "    await anyio.sleep(1.0)\n"
        "run_service('berth-slow', main)\n"
    )
    with nats_server() as url:
        env = {"BERTH_NODE": "harness", "PYTHONPATH": str(tmp_path)}
        slow = ServiceProcess("berth_slow_service", "berth-slow", url, env, tmp_path / "log")
        try:
            started = time.monotonic()
            slow.start(within=30)
            assert time.monotonic() - started >= 1.0
            pong = slow.wait_ready(5)
            assert (pong.service, pong.node) == ("berth-slow", "harness")
        finally:
            assert slow.stop() == 0
