"""The agent's exec, pause/resume, top, update and stats against real runc."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from agent_testlib import Client, spec
from berth_contracts import subjects
from berth_contracts.agent import (
    ExecProcess,
    TaskGet,
    TaskPause,
    TaskResume,
    TaskState,
)
from berth_contracts.agentops import TaskStats, TaskStatsSample, TaskTop, TaskTopResult, TaskUpdate
from berth_contracts.base import Done
from berth_contracts.codec import encode
from berth_contracts.errors import Conflict, InvalidParameter, NotFound
from berth_contracts.streams import StdinChunk

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def new_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


async def run_exec(c: Client, cid: str, proc: ExecProcess, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    eid = new_id()
    out = await c.collect_output(eid)
    await c.exec_start(cid, eid, proc)
    if stdin:
        await c.nc.publish(subjects.stdio_in(eid), encode(StdinChunk(data=stdin, eof=True)))
    await out.wait_eof()
    state = await c.exec_state(cid, eid)
    assert not state.running
    return state.exit_code, out.data(1), out.data(2)


async def test_exec_pipes_tty_user_env(c: Client, rootfs: Path) -> None:
    cid = new_id()
    await c.run(cid, rootfs, spec("sleep", "100", env=["PATH=/bin", "A=1"]))
    code, out, err = await run_exec(
        c,
        cid,
        ExecProcess(
            args=["sh", "-c", "echo $A$B; echo e >&2; exit 3"],
            env=["PATH=/bin", "A=1", "B=2"],
        ),
    )
    assert (code, out, err) == (3, b"12\n", b"e\n")
    code, out, _ = await run_exec(
        c, cid, ExecProcess(args=["sh", "-c", "id -u; pwd"], user="1000", cwd="/tmp")
    )
    assert (code, out) == (0, b"1000\n/tmp\n")
    code, out, _ = await run_exec(
        c, cid, ExecProcess(args=["sh", "-c", "stty size"], tty=True, height=30, width=90)
    )
    assert (code, out) == (0, b"30 90\r\n")
    code, out, _ = await run_exec(
        c, cid, ExecProcess(args=["cat"], open_stdin=True), stdin=b"in\n"
    )
    assert (code, out) == (0, b"in\n")
    with pytest.raises(InvalidParameter, match="unable to find user nope"):
        await run_exec(c, cid, ExecProcess(args=["true"], user="nope"))
    with pytest.raises(NotFound):
        await c.exec_state(cid, "x")
    await c.delete(cid)


def _ignored_here() -> int:
    """The signals this process ignores, as /proc shows them (a mask)."""
    with open("/proc/self/status") as own:
        return next(int(line.split()[1], 16) for line in own if line.startswith("SigIgn:"))


async def test_processes_start_with_default_signals_and_only_their_stdio(
    c: Client, rootfs: Path
) -> None:
    """runc is started from a fork of the shim (shim/runc.py): what the shim ignores (SIGPIPE,
    SIGTERM...) and the fds it holds (a TTY container's pty master) must not reach the
    container's processes, as with dockerd (nothing ignored or blocked, fds 0-2 only). Signals
    32 and 33 (glibc's own) are the exception: ignored here when this test's process has them
    ignored (GNU make's posix_spawn does that to `make test`), as they would be with dockerd."""
    allowed = _ignored_here() & (1 << 31 | 1 << 32)  # bit n-1 is signal n
    cid = new_id()
    await c.run(cid, rootfs, spec("sleep", "100", tty=True))
    script = "grep -E '^Sig(Ign|Blk)' /proc/1/status /proc/self/status; ls /proc/self/fd"
    for tty in (False, True):
        code, out, _ = await run_exec(c, cid, ExecProcess(args=["sh", "-c", script], tty=tty))
        lines = out.decode().replace("\r", "").splitlines()
        assert code == 0
        masks = [int(line.split()[-1], 16) for line in lines if "Sig" in line]
        assert len(masks) == 4 and all(mask & ~allowed == 0 for mask in masks), out
        fds = " ".join(line for line in lines if "Sig" not in line).split()
        assert fds == ["0", "1", "2", "3"], out  # 3: ls's own directory
    await c.delete(cid)


async def test_pause_resume_top_update_stats(c: Client, rootfs: Path) -> None:
    cid = new_id()
    await c.run(cid, rootfs, spec("sleep", "100"))
    await c.call(TaskPause(container_id=cid), Done)
    assert (await c.call(TaskGet(container_id=cid), TaskState)).status == "paused"
    with pytest.raises(Conflict):
        await c.exec_start(cid, new_id(), ExecProcess(args=["true"]))
    await c.call(TaskResume(container_id=cid), Done)
    assert (await c.call(TaskGet(container_id=cid), TaskState)).status == "running"

    top = await c.call(TaskTop(container_id=cid), TaskTopResult)
    assert "PID" in top.titles and [p for p in top.processes if p[-1] == "sleep 100"]
    await c.call(TaskUpdate(container_id=cid, memory=64 << 20, memory_swap=-1), Done)
    sample = await c.call(TaskStats(container_id=cid), TaskStatsSample)
    assert sample.mem_limit == 64 << 20 and sample.pids_current == 1
    assert sample.cpu_total > 0 and sample.system_cpu > 0

    # A paused task is thawed for its KILL: delete reports the exit.
    await c.call(TaskPause(container_id=cid), Done)
    await c.delete(cid)
    assert (await c.wait_exit(cid)).exit_code == 137
