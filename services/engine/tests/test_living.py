"""Pure parts of exec, healthchecks, update and the event history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from berth_contracts.containerops import UpdateConfig
from berth_contracts.docker import Event, EventActor, Health, HealthConfig, HealthLog, RestartPolicy
from berth_contracts.errors import InvalidParameter
from berth_contracts.eventlog import EventHistory
from berth_engine.containers.health import HealthMonitor, health_text, probe_command
from berth_engine.containers.records import Record
from berth_engine.containers.resources import updated_host_config
from berth_engine.containers.views import status_text
from berth_engine.eventlog import EventLog


def test_probe_command(make_record: Callable[..., Record]) -> None:
    rec = make_record("h")
    assert probe_command(rec, HealthConfig(test=["CMD", "true", "x"])) == ["true", "x"]
    assert probe_command(rec, HealthConfig(test=["CMD-SHELL", "exit 1"])) == [
        "/bin/sh",
        "-c",
        "exit 1",
    ]
    assert probe_command(rec, HealthConfig(test=["NONE"])) is None
    assert probe_command(rec, HealthConfig(test=None)) is None


def test_health_text_in_status(make_record: Callable[..., Record]) -> None:
    assert health_text(None) == ""
    assert health_text(Health(status="starting")) == " (health: starting)"
    rec = make_record("h")
    rec.state.status, rec.state.started_at = "running", "2024-01-01T00:00:00Z"
    rec.state.health = Health(status="unhealthy")
    assert status_text(rec).endswith(" (unhealthy)")


class _Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.saved = 0

    async def container(self, rec: Record, action: str, extra: Any = None) -> None:
        self.events.append(action)

    async def save(self, rec: Record) -> None:
        self.saved += 1


def test_health_results(make_record: Callable[..., Record]) -> None:
    rec = make_record("h")
    rec.state.health = Health(status="starting")
    recorder = _Recorder()
    core: Any = type("Core", (), {"store": recorder, "events": recorder})()
    monitor = HealthMonitor(core, None, None)  # type: ignore[arg-type]
    check = HealthConfig(test=["CMD", "x"], retries=2)

    def result(code: int) -> HealthLog:
        return HealthLog(start="s", end="e", exit_code=code, output="o")

    async def main() -> None:
        await monitor._record(rec, check, result(1), in_start_period=True)
        assert rec.state.health is not None
        assert (rec.state.health.status, rec.state.health.failing_streak) == ("starting", 0)
        await monitor._record(rec, check, result(1), in_start_period=False)
        assert rec.state.health.status == "starting"
        await monitor._record(rec, check, result(1), in_start_period=False)
        assert (rec.state.health.status, rec.state.health.failing_streak) == ("unhealthy", 2)
        await monitor._record(rec, check, result(0), in_start_period=False)
        assert (rec.state.health.status, rec.state.health.failing_streak) == ("healthy", 0)
        for _ in range(6):
            await monitor._record(rec, check, result(0), in_start_period=False)
        assert len(rec.state.health.log) == 5

    anyio.run(main)
    assert recorder.events == ["health_status: unhealthy", "health_status: healthy"]


def test_update_checks(make_record: Callable[..., Record]) -> None:
    rec = make_record("u")
    hc = rec.host_config
    new = updated_host_config(hc, UpdateConfig(memory=64 << 20, pids_limit=0), rec)
    assert new.memory == 64 << 20 and new.pids_limit is None
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed is 6MB"):
        updated_host_config(hc, UpdateConfig(memory=1 << 20), rec)
    with pytest.raises(InvalidParameter, match="maximum retry count cannot be used"):
        updated_host_config(
            hc,
            UpdateConfig(restart_policy=RestartPolicy(name="always", maximum_retry_count=2)),
            rec,
        )
    policy = RestartPolicy(name="on-failure", maximum_retry_count=3)
    assert (
        updated_host_config(hc, UpdateConfig(restart_policy=policy), rec).restart_policy == policy
    )


def test_event_history_window() -> None:
    log = EventLog(keep=3)
    for n in range(5):
        log.events.append(
            Event(Type="container", Action=f"a{n}", Actor=EventActor(ID="x"), timeNano=n * 10**9)
        )

    async def main() -> None:
        got = await log.history(EventHistory(since=3.0))
        assert [e.Action for e in got.events] == ["a3", "a4"]
        got = await log.history(EventHistory(since=0.0, until=3.0))
        assert [e.Action for e in got.events] == ["a2", "a3"]  # a0, a1 fell out of the 3 kept

    anyio.run(main)


def test_execs_go_with_their_container(make_record: Callable[..., Record]) -> None:
    from berth_contracts.execs import ExecConfig
    from berth_engine.containers.execs import ExecService, exec_env

    rec = make_record("x")
    rec.state.status = "running"
    service = ExecService(None, None)  # type: ignore[arg-type]
    entry = service.new_exec(rec, ExecConfig(cmd=["true"], env=["A=1"], tty=True))
    other = service.new_exec(rec, ExecConfig(cmd=["x"]))
    assert set(service.execs) == {entry.id, other.id}
    service.forget_container(rec.id)
    assert service.execs == {}
    env = exec_env(rec, ExecConfig(cmd=["true"], env=["A=1", "HOSTNAME=h"], tty=True))
    assert "A=1" in env and "TERM=xterm" in env and "HOSTNAME=h" in env
    with pytest.raises(InvalidParameter, match="No exec command specified"):
        service.new_exec(rec, ExecConfig(cmd=[]))


def test_health_filter(make_record: Callable[..., Record]) -> None:
    from berth_engine.containers.listing import select

    sick, plain = make_record("sick"), make_record("plain")
    for rec in (sick, plain):
        rec.state.status = "running"
    sick.state.health = Health(status="unhealthy")
    assert select([sick, plain], all_=False, limit=-1, filters={"health": ["unhealthy"]}) == [sick]
    assert select([sick, plain], all_=False, limit=-1, filters={"health": ["none"]}) == [plain]
    with pytest.raises(InvalidParameter, match="Unrecognised filter value for health: ill"):
        select([sick], all_=False, limit=-1, filters={"health": ["ill"]})
