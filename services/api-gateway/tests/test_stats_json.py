"""Docker's StatsJSON as the gateway builds it from agent readings."""

from __future__ import annotations

from berth_contracts.agentops import TaskStatsSample
from berth_contracts.engine import ContainerRef
from berth_gateway.routes.resources import stats_json

REF = ContainerRef(
    id="c" * 64, name="web", status="running", tty=False, open_stdin=False, stdin_once=False,
    auto_remove=False,
)  # fmt: skip


def test_sample_with_previous() -> None:
    prev = TaskStatsSample(read="t1", cpu_total=100, system_cpu=1000, online_cpus=2)
    cur = TaskStatsSample(
        read="t2", cpu_total=300, system_cpu=2000, online_cpus=2, mem_usage=10, mem_limit=99,
        mem_stats={"total_inactive_file": 2}, pids_current=3, blkio=[(8, 0, "Read", 5)],
    )  # fmt: skip
    out = stats_json(REF, cur, prev)
    assert (out["name"], out["id"], out["read"], out["preread"]) == ("/web", "c" * 64, "t2", "t1")
    assert out["cpu_stats"]["cpu_usage"]["total_usage"] == 300
    assert out["precpu_stats"]["system_cpu_usage"] == 1000
    assert (
        out["memory_stats"]["limit"] == 99
        and out["memory_stats"]["stats"]["total_inactive_file"] == 2
    )
    assert out["pids_stats"] == {"current": 3}
    assert out["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 5}
    ]


def test_not_running_is_an_empty_sample() -> None:
    out = stats_json(REF, None, None)
    assert out["read"] == "0001-01-01T00:00:00Z" and out["memory_stats"] == {}
    assert out["cpu_stats"]["cpu_usage"]["total_usage"] == 0
