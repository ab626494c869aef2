"""/info's SystemTime as dockerd prints it: Go's RFC3339Nano (fraction trimmed, nanoseconds)."""

from __future__ import annotations

import time

import pytest
from berth_contracts.engine import EngineInfo
from berth_gateway.routes.system import info_body


def test_system_time_is_go_rfc3339nano(monkeypatch: pytest.MonkeyPatch) -> None:
    info = EngineInfo(
        id="x", name="berth", containers=0, running=0, paused=0, stopped=0, images=0,
        data_root="/var/lib/berth", kernel_version="6", operating_system="linux", ncpu=1,
        mem_total=1, cgroup_version="2", runtime_version="runc",
    )  # fmt: skip
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_123_456_700)
    assert info_body(info)["SystemTime"] == "2023-11-14T22:13:20.1234567Z"
