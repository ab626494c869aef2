"""The agent never takes an id it is given as a path part unchecked (issue 15, finding 3)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from agent_testlib import client
from berth_agent.paths import Paths
from berth_contracts.agent import TaskDelete, TaskGet, TaskPurge, TaskState
from berth_contracts.base import Done
from berth_contracts.errors import InvalidParameter


def test_task_delete_with_a_path_as_id_is_refused(agent, nats_url: str) -> None:
    # tasks dir = <exec>/agent/tasks: "../../../victim" is a root-only directory beside the roots.
    victim = agent.exec_root.parent / "victim"
    victim.mkdir(mode=0o700)
    (victim / "file").write_text("root's\n")

    async def main() -> None:
        async with client(nats_url, agent.node) as c:
            for cmd in (TaskDelete(container_id="../../../victim"),
                        TaskPurge(container_id="../../../victim")):  # fmt: skip
                with pytest.raises(InvalidParameter, match='identifier "../../../victim" must'):
                    await c.call(cmd, Done)
            with pytest.raises(InvalidParameter, match="invalid container_id"):
                await c.call(TaskGet(container_id="a/b"), TaskState)

    anyio.run(main)
    assert (victim / "file").read_text() == "root's\n"


def test_paths_refuse_unchecked_ids(tmp_path: Path) -> None:
    paths = Paths(data_root=tmp_path / "d", exec_root=tmp_path / "x")
    for bad in ("..", "../x", "a/b", "", "-x", "a" * 77):
        for build in (paths.bundle, paths.socket, paths.log_dir, paths.log_path):
            with pytest.raises(InvalidParameter):
                build(bad)
    assert paths.bundle("c" * 64) == tmp_path / "x" / "agent" / "tasks" / ("c" * 64)
