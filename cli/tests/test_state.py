from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from berth_cli import procs
from berth_cli.state import BerthState, ChildState, NatsState, read_state, remove_state, write_state


def sample() -> BerthState:
    return BerthState(
        supervisor_pid=123,
        supervisor_start_ticks=456,
        data_root="/d",
        exec_root="/x",
        hosts=["unix:///x/docker.sock"],
        docker_host="unix:///x/docker.sock",
        nats=NatsState(url="nats://127.0.0.1:1", embedded=True, process=ChildState(name="nats-server", pid=9)),
        services=[ChildState(name="berth-engine", module="berth_engine", pid=10, state="running")],
    )


def test_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "berth.json"
    write_state(path, sample())
    assert read_state(path) == sample()
    assert os.listdir(tmp_path) == ["berth.json"]  # the temp file was renamed away


def test_missing_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "berth.json"
    assert read_state(path) is None
    path.write_text("{not json")
    assert read_state(path) is None
    remove_state(path)
    remove_state(path)  # idempotent
    assert not path.exists()


def test_alive_and_pid_reuse_guard() -> None:
    me = os.getpid()
    ticks = procs.start_ticks(me)
    assert ticks > 0
    assert procs.alive(me)
    assert procs.alive(me, ticks)
    assert not procs.alive(me, ticks + 1)  # same pid, another process
    assert not procs.alive(0)


def test_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Not reaped yet: a zombie once it exits.
        assert procs.wait_gone(child.pid, 0, 10)
    finally:
        child.wait(timeout=10)
    assert procs.start_ticks(child.pid) == 0 or not procs.alive(child.pid)
