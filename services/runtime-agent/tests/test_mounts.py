"""Real overlayfs roots, extra bind mounts (volumes), and a zygote that died."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import anyio
import pytest
from agent_testlib import Client, client, spec
from berth_contracts.agent import TaskCreate, TaskCreated, TaskStart, TaskStarted
from berth_contracts.lifecycle import Mount

pytestmark = pytest.mark.anyio


def new_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def test_overlay_root_and_volume(agent, rootfs: Path, nats_url: str, tmp_path: Path) -> None:
    upper, work, vol = tmp_path / "upper", tmp_path / "work", tmp_path / "vol"
    for d in (upper, work, vol):
        d.mkdir()
    (vol / "data").write_text("from the host\n")
    mounts = [
        Mount(
            type="overlay",
            source="overlay",
            target="/",
            options=[f"lowerdir={rootfs}", f"upperdir={upper}", f"workdir={work}"],
        ),
        Mount(type="bind", source=str(vol), target="/vol", options=["rbind", "rw"]),
    ]

    async def main() -> None:
        async with client(nats_url, agent.node) as c:
            cid = new_id()
            out = await c.collect_output(cid)
            script = "echo written > /new; cat /vol/data; echo back > /vol/out; cat /new"
            await c.call(
                TaskCreate(container_id=cid, spec=spec("sh", "-c", script), rootfs=mounts),
                TaskCreated,
            )
            bundle_rootfs = agent.exec_root / "agent" / "tasks" / cid / "rootfs"
            assert os.path.ismount(bundle_rootfs)  # noqa: ASYNC240
            await c.call(TaskStart(container_id=cid), TaskStarted)
            ev = await c.wait_exit(cid)
            await out.wait_eof()
            assert ev.exit_code == 0
            assert out.data(1) == b"from the host\nwritten\n"
            await c.delete(cid)
            assert not os.path.ismount(bundle_rootfs)  # noqa: ASYNC240

    anyio.run(main)
    assert (upper / "new").read_text() == "written\n"  # the write went to the upper layer
    assert not (rootfs / "new").exists()
    assert (vol / "out").read_text() == "back\n"


async def test_zygote_killed_is_replaced(c: Client, agent, rootfs: Path) -> None:
    cid = new_id()
    await c.run(cid, rootfs, spec("true"))
    await c.wait_exit(cid)
    assert agent.proc is not None
    children = Path(f"/proc/{agent.proc.pid}/task/{agent.proc.pid}/children").read_text()  # noqa: ASYNC240
    for pid in map(int, children.split()):
        os.kill(pid, signal.SIGKILL)
    cid2 = new_id()
    await c.run(cid2, rootfs, spec("true"))
    assert (await c.wait_exit(cid2)).exit_code == 0
    await c.delete(cid)
    await c.delete(cid2)
