"""Running containers through the real agent, zygote, shim and runc."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import anyio
import pytest
from agent_testlib import Client, bind_root, spec
from berth_contracts import subjects
from berth_contracts.agent import (
    TaskCreate,
    TaskCreated,
    TaskGet,
    TaskKill,
    TaskListAll,
    TaskPurge,
    TaskResize,
    TaskStart,
    TaskStarted,
    TaskState,
    TaskStates,
)
from berth_contracts.base import Done
from berth_contracts.codec import decode, encode
from berth_contracts.errors import BerthError, Conflict, InternalError, InvalidParameter, NotFound
from berth_contracts.streams import StdinChunk, StdioChunk

pytestmark = pytest.mark.anyio

RFC3339NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def new_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


async def run_to_exit(
    c: Client, rootfs: Path, *args: str, **kw: object
) -> tuple[str, bytes, bytes, int, bool]:
    cid = new_id()
    _, ev, out = await c.run_to_exit(cid, rootfs, spec(*args, **kw))  # type: ignore[arg-type]
    return cid, out.data(1), out.data(2), ev.exit_code, ev.oom_killed


async def test_echo_output_log_and_ordering(c: Client, agent, rootfs: Path) -> None:
    cid = new_id()
    seen: list[tuple[str, bytes]] = []

    exit_seen = anyio.Event()

    async def on_any(msg) -> None:  # type: ignore[no-untyped-def]
        seen.append((msg.subject, msg.data))
        if msg.subject == subjects.task_events(agent.node):
            exit_seen.set()

    # One subscription for both subjects: arrival order is the agent's publish order.
    await c.nc.subscribe("berth.>", cb=on_any)
    await c.nc.flush()
    created, started = await c.run(
        cid, rootfs, spec("sh", "-c", "echo hello; echo oops >&2")
    )
    assert created.pid > 0
    assert created.log_path.endswith(f"/agent/containers/{cid}/{cid}-json.log")
    assert started is not None and started.pid == created.pid
    assert RFC3339NANO.match(started.started_at)
    ev = await c.wait_exit(cid)
    assert ev.exit_code == 0 and not ev.oom_killed and ev.node == agent.node
    assert RFC3339NANO.match(ev.exited_at)
    with anyio.fail_after(5):
        await exit_seen.wait()
    kinds = []
    stdout = b""
    stderr = b""
    for subject, data in seen:
        if subject == subjects.stdio_out(cid):
            chunk = decode(data, StdioChunk)
            kinds.append("eof" if chunk.eof else "out")
            if chunk.stream == 1:
                stdout += chunk.data
            else:
                stderr += chunk.data
        elif subject == subjects.task_events(agent.node):
            kinds.append("exit")
    assert stdout == b"hello\n" and stderr == b"oops\n"
    assert kinds[-2:] == ["eof", "exit"] and kinds.count("eof") == 1
    assert set(kinds[:-2]) == {"out"}

    log = Path(created.log_path)
    records = [json.loads(line) for line in log.read_text().splitlines()]  # noqa: ASYNC240
    assert sorted((r["stream"], r["log"]) for r in records) == [
        ("stderr", "oops\n"),
        ("stdout", "hello\n"),
    ]
    assert all(list(r) == ["log", "stream", "time"] for r in records)
    assert all(RFC3339NANO.match(r["time"]) for r in records)

    state = await c.call(TaskGet(container_id=cid), TaskState)
    assert state.status == "stopped" and state.exit_code == 0
    await c.delete(cid)
    assert not (agent.exec_root / "agent" / "tasks" / cid).exists()
    assert log.exists()  # noqa: ASYNC240 - the log stays until TaskPurge
    await c.call(TaskPurge(container_id=cid), Done)
    assert not log.parent.exists()
    with pytest.raises(NotFound):
        await c.call(TaskGet(container_id=cid), TaskState)


async def test_exit_code_hostname_env_cwd_user(c: Client, rootfs: Path) -> None:
    _, _, _, code, oom = await run_to_exit(c, rootfs, "sh", "-c", "exit 3")
    assert code == 3 and not oom

    script = "hostname; cat /etc/hostname; grep -c myhost /etc/hosts; echo $FOO; pwd; id -u; id -g; id -G"
    _, out, err, code, _ = await run_to_exit(
        c, rootfs, "sh", "-c", script,
        hostname="myhost", env=["PATH=/bin", "FOO=bar"], cwd="/tmp", user="1000",
    )  # fmt: skip
    assert err == b"" and code == 0
    assert out.decode().split("\n") == [
        "myhost", "myhost", "1", "bar", "/tmp", "1000", "1000", "1000 50", "",
    ]  # fmt: skip

    _, out, _, _, _ = await run_to_exit(
        c, rootfs, "sh", "-c", "id -u; id -g", user="user:staff"
    )
    assert out == b"1000\n50\n"
    _, out, _, _, _ = await run_to_exit(
        c, rootfs, "sh", "-c", "id -u; id -g; echo $HOME", user="4242"
    )
    assert out == b"4242\n0\n/\n"
    _, out, _, _, _ = await run_to_exit(c, rootfs, "sh", "-c", "id -G")
    assert out == b"0 10\n"


async def test_create_errors(c: Client, agent, rootfs: Path) -> None:
    cid = new_id()
    with pytest.raises(InvalidParameter) as err:
        await c.call(
            TaskCreate(container_id=cid, spec=spec("nosuch"), rootfs=bind_root(rootfs)),
            Done,
        )
    assert 'exec: "nosuch": executable file not found in $PATH' in err.value.message
    assert err.value.message.startswith("failed to create task for container: ")
    assert not (agent.exec_root / "agent" / "tasks" / cid).exists()
    with pytest.raises(NotFound):
        await c.call(TaskGet(container_id=cid), TaskState)
    assert not os.path.ismount(rootfs)  # noqa: ASYNC240 - nothing left mounted

    with pytest.raises(InvalidParameter) as err:
        await c.call(
            TaskCreate(
                container_id=new_id(),
                spec=spec("true", user="nobody2"),
                rootfs=bind_root(rootfs),
            ),
            Done,
        )
    # Worded as runc words it (it resolves the user in dockerd's stack): runcerrors.py.
    assert err.value.message == (
        "failed to create task for container: failed to create shim task: OCI runtime "
        "create failed: runc create failed: unable to start container process: unable "
        "to find user nobody2: no matching entries in passwd file: unknown"
    )

    cid = new_id()
    with pytest.raises(InternalError) as ierr:
        await c.call(
            TaskCreate(
                container_id=cid,
                spec=spec("true"),
                rootfs=bind_root(rootfs / "nonexistent"),
            ),
            Done,
        )
    assert "mount" in ierr.value.message
    assert not (agent.exec_root / "agent" / "tasks" / cid).exists()

    states = await c.call(TaskListAll(), TaskStates)
    assert states.tasks == []


async def test_oom_kill(c: Client, rootfs: Path) -> None:
    cid, _, _, code, oom = await run_to_exit(
        c,
        rootfs,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=100M",
        "count=1",
        memory=32 * 1024 * 1024,
    )
    assert code == 137 and oom
    state = await c.call(TaskGet(container_id=cid), TaskState)
    assert state.status == "stopped" and state.oom_killed and state.exit_code == 137
    await c.delete(cid)


async def test_kill_readonly_and_stdin(c: Client, rootfs: Path) -> None:
    cid = new_id()
    await c.run(cid, rootfs, spec("sleep", "100"))
    state = await c.call(TaskGet(container_id=cid), TaskState)
    assert state.status == "running" and state.pid > 0
    listed = await c.call(TaskListAll(), TaskStates)
    assert [t.container_id for t in listed.tasks] == [cid]
    await c.call(TaskKill(container_id=cid, signal=9), Done)
    ev = await c.wait_exit(cid)
    assert ev.exit_code == 137 and not ev.oom_killed
    with pytest.raises(Conflict):
        await c.call(TaskKill(container_id=cid, signal=9), Done)
    await c.delete(cid)

    _, out, _, code, _ = await run_to_exit(
        c, rootfs, "sh", "-c", "grep CapBnd /proc/self/status", privileged=True
    )
    assert code == 0 and out.split()[-1] == _own_cap_bnd()

    _, _, err, code, _ = await run_to_exit(c, rootfs, "touch", "/x", readonly_rootfs=True)
    assert code == 1 and b"Read-only file system" in err

    # Input sent before the task exists (docker run -i attaches first) is kept.
    cid = new_id()
    echoed = await c.collect_output(cid)
    await c.nc.publish(subjects.stdio_in(cid), encode(StdinChunk(data=b"early\n")))
    await c.nc.flush()
    await c.run(cid, rootfs, spec("cat", open_stdin=True))
    await c.nc.publish(subjects.stdio_in(cid), encode(StdinChunk(data=b"ping\n")))
    await c.nc.publish(subjects.stdio_in(cid), encode(StdinChunk(data=b"", eof=True)))
    ev = await c.wait_exit(cid)
    await echoed.wait_eof()
    assert ev.exit_code == 0 and echoed.data(1) == b"early\nping\n"


async def test_delete_running_task(c: Client, agent, rootfs: Path) -> None:
    cid = new_id()
    await c.run(cid, rootfs, spec("sleep", "100"))
    await c.delete(cid)
    ev = await c.wait_exit(cid)
    assert ev.exit_code == 137
    assert not (agent.exec_root / "agent" / "tasks" / cid).exists()
    assert list((agent.exec_root / "runc").iterdir()) == []
    await c.delete(cid)  # idempotent


async def test_tty(c: Client, rootfs: Path) -> None:
    cid = new_id()
    out = await c.collect_output(cid)
    await c.run(
        cid, rootfs, spec("sh", "-c", "stty size; tty; echo hi", tty=True), start=False
    )
    await c.call(TaskResize(container_id=cid, height=40, width=100), Done)
    await c.call(TaskStart(container_id=cid), TaskStarted)
    ev = await c.wait_exit(cid)
    await out.wait_eof()
    assert ev.exit_code == 0
    assert out.data(1) == b"40 100\r\n/dev/pts/0\r\nhi\r\n" and out.data(2) == b""
    await c.delete(cid)

    cid = new_id()
    out = await c.collect_output(cid)
    await c.run(cid, rootfs, spec("cat", tty=True, open_stdin=True))
    await c.nc.publish(subjects.stdio_in(cid), encode(StdinChunk(data=b"abc\n")))
    await c.nc.publish(
        subjects.stdio_in(cid), encode(StdinChunk(data=b"\x04"))
    )  # ^D ends cat
    ev = await c.wait_exit(cid)
    await out.wait_eof()
    assert ev.exit_code == 0 and out.data(1) == b"abc\r\nabc\r\n"
    await c.delete(cid)


async def test_fast_exits_are_never_reported_running(c: Client, rootfs: Path) -> None:
    """The exit frame can overtake TaskStart's reply in the agent: state must stay stopped."""
    for _ in range(8):
        cid = new_id()
        await c.run(cid, rootfs, spec("true"))
        await c.wait_exit(cid)
        state = await c.call(TaskGet(container_id=cid), TaskState)
        assert state.status == "stopped" and state.started_at
        await c.delete(cid)


def _own_cap_bnd() -> bytes:
    for line in Path("/proc/self/status").read_bytes().splitlines():
        if line.startswith(b"CapBnd:"):
            return line.split()[-1]
    raise AssertionError("no CapBnd")


async def test_create_and_start_in_one_call(c: Client, agent, rootfs: Path) -> None:
    """TaskCreate(start=True): the engine's usual start, one round trip instead of two."""
    cid = new_id()
    out = await c.collect_output(cid)
    created = await c.call(
        TaskCreate(
            container_id=cid, spec=spec("sh", "-c", "echo one-call"),
            rootfs=bind_root(rootfs), start=True,
        ),
        TaskCreated,
    )
    assert created.pid > 0 and created.started_at.endswith("Z")
    ev = await c.wait_exit(cid)
    await out.wait_eof()
    assert ev.exit_code == 0 and out.data(1) == b"one-call\n"
    # Already running: a TaskStart on top is refused like a second docker start.
    with pytest.raises(BerthError, match="cannot start"):
        await c.call(TaskStart(container_id=cid), TaskStarted)
    await c.delete(cid)

    # A create that fails leaves nothing behind, start or not.
    bad = new_id()
    with pytest.raises(BerthError, match="no such file or directory"):
        await c.call(
            TaskCreate(
                container_id=bad, spec=spec("/no/such/binary"),
                rootfs=bind_root(rootfs), start=True,
            ),
            TaskCreated,
        )
    assert not (agent.exec_root / "agent" / "tasks" / bad).exists()
