"""Containers outlive the agent: kill -9 it, restart it, and it re-adopts shims or reports exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import anyio
import pytest
from agent_testlib import Client, client, spec
from berth_contracts import subjects
from berth_contracts.agent import (
    ExecProcess,
    TaskGet,
    TaskKill,
    TaskState,
)
from berth_contracts.base import Done
from berth_contracts.codec import encode
from berth_contracts.streams import StdinChunk


def new_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def shim_state(agent, cid: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return json.loads((agent.exec_root / "agent" / "tasks" / cid / "state.json").read_text())


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def runc_status(agent, cid: str) -> str:  # type: ignore[no-untyped-def]
    out = subprocess.run(
        ["runc", "--root", str(agent.exec_root / "runc"), "state", cid],
        capture_output=True,
        check=False,
    )
    return json.loads(out.stdout)["status"] if out.returncode == 0 else "gone"


def wait_until(cond, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_kill9_agent_then_adopt_running_container(agent, rootfs: Path, nats_url: str) -> None:
    cid = new_id()

    async def start() -> int:
        async with client(nats_url, agent.node) as c:
            created, _ = await c.run(cid, rootfs, spec("sleep", "100"))
            return created.pid

    pid = anyio.run(start)
    shim_pid = shim_state(agent, cid)["shim_pid"]
    assert agent.proc is not None
    assert agent.proc.pid not in ancestors(shim_pid)  # the shim is no descendant of the agent
    assert shim_pid in ancestors(pid)

    agent.kill9()
    assert alive(shim_pid) and alive(pid)
    assert runc_status(agent, cid) == "running"
    agent.start()

    async def adopt() -> None:
        async with client(nats_url, agent.node) as c:
            state = await c.call(TaskGet(container_id=cid), TaskState)
            assert state.status == "running" and state.pid == pid
            out = await c.collect_output(cid)
            await c.call(TaskKill(container_id=cid, signal=signal.SIGKILL), Done)
            ev = await c.wait_exit(cid)
            await out.wait_eof()
            assert ev.exit_code == 137 and ev.pid == pid
            await c.delete(cid)

    anyio.run(adopt)
    wait_until(lambda: not alive(shim_pid))


def test_exit_while_agent_down_is_reported_on_restart(agent, rootfs: Path, nats_url: str) -> None:
    cid = new_id()

    async def start() -> None:
        async with client(nats_url, agent.node) as c:
            script = "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo bye; exit 7"
            await c.run(cid, rootfs, spec("sh", "-c", script))

    anyio.run(start)
    agent.kill9()
    (rootfs / "tmp" / "go").touch()  # the container exits now, with no agent running
    wait_until(lambda: shim_state(agent, cid)["status"] == "stopped")
    agent.start()

    async def restart() -> None:
        async with client(nats_url, agent.node) as c:
            ev = await c.wait_exit(cid)
            assert ev.exit_code == 7
            state = await c.call(TaskGet(container_id=cid), TaskState)
            assert state.status == "stopped" and state.exit_code == 7
            await c.delete(cid)

    anyio.run(restart)


@pytest.mark.anyio
async def test_dead_shim_is_reported_as_255(c: Client, agent, rootfs: Path) -> None:
    cid = new_id()
    created, _ = await c.run(cid, rootfs, spec("sleep", "100"))
    shim_pid = shim_state(agent, cid)["shim_pid"]
    os.kill(shim_pid, signal.SIGKILL)
    ev = await c.wait_exit(cid)
    assert ev.exit_code == 255
    assert runc_status(agent, cid) == "gone"
    assert not alive(created.pid)
    state = await c.call(TaskGet(container_id=cid), TaskState)
    assert state.status == "stopped" and state.exit_code == 255
    await c.delete(cid)


def test_output_while_agent_down_goes_to_the_log(agent, rootfs: Path, nats_url: str) -> None:
    cid = new_id()
    script = "i=0; while [ ! -e /tmp/go ]; do i=$((i+1)); echo $i; sleep 0.02; done; echo last"

    async def start() -> str:
        async with client(nats_url, agent.node) as c:
            created, _ = await c.run(cid, rootfs, spec("sh", "-c", script))
            return created.log_path

    log_path = Path(anyio.run(start))
    agent.kill9()
    size = log_path.stat().st_size
    wait_until(lambda: log_path.stat().st_size > size + 200)  # it keeps writing, unblocked
    agent.start()

    async def after() -> None:
        async with client(nats_url, agent.node) as c:
            out = await c.collect_output(cid)
            await c.call(TaskGet(container_id=cid), TaskState)
            (rootfs / "tmp" / "go").touch()  # noqa: ASYNC240
            ev = await c.wait_exit(cid)
            await out.wait_eof()
            assert ev.exit_code == 0 and out.data(1).endswith(b"last\n")
            await c.delete(cid)

    anyio.run(after)
    lines = [json.loads(ln)["log"] for ln in log_path.read_text().splitlines()]
    assert lines[-1] == "last\n"
    assert [int(x) for x in lines[:-1]] == list(range(1, len(lines)))  # nothing lost or doubled


def test_execs_across_an_agent_restart(agent, rootfs: Path, nats_url: str) -> None:
    """An exec that exits while the agent is down, one that exits after the new agent adopted
    the shim, and one whose stdin is fed by the new agent: all end with their own exit codes."""
    cid = new_id()
    gone, later, reader = new_id(), new_id(), new_id()

    def waits_for(flag: str, code: int) -> ExecProcess:
        script = f"while [ ! -e /tmp/{flag} ]; do sleep 0.05; done; exit {code}"
        return ExecProcess(args=["sh", "-c", script], env=["PATH=/bin"])

    async def start() -> None:
        async with client(nats_url, agent.node) as c:
            await c.run(cid, rootfs, spec("sleep", "100"))
            for eid, proc in (
                (gone, waits_for("gone", 7)),
                (later, waits_for("later", 9)),
                (reader, ExecProcess(args=["sh", "-c", "read x; exit $x"], open_stdin=True)),
            ):
                await c.exec_start(cid, eid, proc)

    anyio.run(start)
    agent.kill9()
    (rootfs / "tmp" / "gone").touch()  # exits now, with no agent to tell
    time.sleep(0.5)

    async def after_restart() -> None:
        async with client(nats_url, agent.node, ready=False) as c:
            outputs = {eid: await c.collect_output(eid) for eid in (gone, later, reader)}
            agent.start()
            await c.wait_ready()
            await outputs[gone].wait_eof()  # published by the new agent when it adopts the shim
            state = await c.exec_state(cid, gone)
            assert (state.running, state.exit_code) == (False, 7)

            state = await c.exec_state(cid, later)
            assert state.running and state.pid > 0
            (rootfs / "tmp" / "later").touch()
            await outputs[later].wait_eof()
            state = await c.exec_state(cid, later)
            assert (state.running, state.exit_code) == (False, 9)

            await c.nc.publish(subjects.stdio_in(reader), encode(StdinChunk(data=b"5\n", eof=True)))
            await outputs[reader].wait_eof()
            state = await c.exec_state(cid, reader)
            assert (state.running, state.exit_code) == (False, 5)
            await c.delete(cid)

    anyio.run(after_restart)
