"""Many containers at once, lots of output, a graceful agent restart, a shared network namespace."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import anyio
import pytest
from agent_testlib import Client, client, spec
from berth_contracts.agent import TaskGet, TaskKill, TaskListAll, TaskState, TaskStates
from berth_contracts.base import Done

pytestmark = pytest.mark.anyio


def new_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


async def test_parallel_containers_and_big_output(c: Client, rootfs: Path) -> None:
    ids = [new_id() for _ in range(6)]
    outs = {cid: await c.collect_output(cid) for cid in ids}

    async def one(i: int, cid: str) -> None:
        await c.run(cid, rootfs, spec("sh", "-c", f"echo n{i}; exit {i}"))

    async with anyio.create_task_group() as tg:
        for i, cid in enumerate(ids):
            tg.start_soon(one, i, cid)
    for i, cid in enumerate(ids):
        ev = await c.wait_exit(cid)
        await outs[cid].wait_eof()
        assert ev.exit_code == i and outs[cid].data(1) == f"n{i}\n".encode()
    listed = await c.call(TaskListAll(), TaskStates)
    assert sorted(t.container_id for t in listed.tasks) == sorted(ids)
    for cid in ids:
        await c.delete(cid)

    # ~2.7 MB of output: every byte reaches both the stream and the log.
    cid = new_id()
    created, _, out = await c.run_to_exit(cid, rootfs, spec("sh", "-c", "seq 1 400000"))
    expected = "".join(f"{i}\n" for i in range(1, 400001)).encode()
    assert hashlib.sha256(out.data(1)).digest() == hashlib.sha256(expected).digest()
    lines = Path(created.log_path).read_text().splitlines()  # noqa: ASYNC240
    assert "".join(json.loads(ln)["log"] for ln in lines).encode() == expected
    await c.delete(cid)


def test_graceful_agent_restart_keeps_containers(agent, rootfs: Path, nats_url: str) -> None:
    cid = new_id()

    async def start() -> None:
        async with client(nats_url, agent.node) as c:
            await c.run(cid, rootfs, spec("sleep", "100"))

    anyio.run(start)
    agent.stop()  # SIGTERM: the agent leaves, its shims and containers stay
    agent.start()

    async def after() -> None:
        async with client(nats_url, agent.node) as c:
            state = await c.call(TaskGet(container_id=cid), TaskState)
            assert state.status == "running"
            await c.call(TaskKill(container_id=cid, signal=9), Done)
            assert (await c.wait_exit(cid)).exit_code == 137
            await c.delete(cid)

    anyio.run(after)


async def test_network_mode_container_and_host(c: Client, rootfs: Path) -> None:
    first = new_id()
    await c.run(first, rootfs, spec("sleep", "100"))
    cid = new_id()
    joiner = spec("sh", "-c", "readlink /proc/1/ns/net", network_mode=f"container:{first}")
    _, _, out = await c.run_to_exit(cid, rootfs, joiner)
    state = await c.call(TaskGet(container_id=first), TaskState)
    own = Path(f"/proc/{state.pid}/ns/net").readlink()  # noqa: ASYNC240
    assert out.data(1).decode().strip() == str(own)
    await c.delete(cid)
    await c.delete(first)

    cid = new_id()
    host = spec("sh", "-c", "readlink /proc/1/ns/net", network_mode="host")
    _, _, out = await c.run_to_exit(cid, rootfs, host)
    assert out.data(1).decode().strip() == str(Path("/proc/self/ns/net").readlink())  # noqa: ASYNC240
    await c.delete(cid)


async def test_delete_before_start(c: Client, agent, rootfs: Path) -> None:
    cid = new_id()
    created, _ = await c.run(cid, rootfs, spec("echo", "never"), start=False)
    state = await c.call(TaskGet(container_id=cid), TaskState)
    assert state.status == "created" and state.pid == created.pid
    await c.delete(cid)
    assert not (agent.exec_root / "agent" / "tasks" / cid).exists()  # noqa: ASYNC240
    assert list((agent.exec_root / "runc").iterdir()) == []  # noqa: ASYNC240
    await anyio.sleep(0.2)
    assert cid not in c.exits  # it never ran: no exit to report
