"""Wiring: the agent's RPC handlers on subjects.agent_rpc(node)."""

from __future__ import annotations

import logging
import os

import anyio
from berth_contracts import subjects
from berth_contracts.agent import (
    AgentRequest,
    Done,
    NetworkRelease,
    TaskCreate,
    TaskCreated,
    TaskDelete,
    TaskExec,
    TaskExecGet,
    TaskExecResize,
    TaskExecStarted,
    TaskExecState,
    TaskGet,
    TaskKill,
    TaskListAll,
    TaskLogs,
    TaskNetworkUpdate,
    TaskPause,
    TaskPurge,
    TaskResize,
    TaskResume,
    TaskStart,
    TaskStarted,
    TaskState,
    TaskStates,
)
from berth_contracts.agentops import TaskStats, TaskStatsSample, TaskTop, TaskTopResult, TaskUpdate
from berth_contracts.base import Ping, Pong
from berth_contracts.errors import Conflict
from berth_kit.service import ServiceContext

from berth_agent import resources
from berth_agent.logs import stream_logs
from berth_agent.paths import Paths
from berth_agent.tasks import TaskManager

log = logging.getLogger(__name__)


async def main(ctx: ServiceContext) -> None:
    paths = Paths.from_env()
    manager = TaskManager(
        ctx.nc, ctx.node, paths, ctx.tg, runc=os.environ.get("BERTH_RUNC", "runc")
    )
    await manager.adopt_all()
    ctx.tg.start_soon(_close_on_stop, manager)

    srv = ctx.server(subjects.agent_rpc(ctx.node), AgentRequest, queue=subjects.AGENT_QUEUE)

    async def task_create(cmd: TaskCreate) -> TaskCreated:
        await manager.create(cmd)
        task = manager.get(cmd.container_id)
        log_path = str(paths.log_path(cmd.container_id))
        pid = int(task.state.get("pid", 0))
        if not cmd.start:
            return TaskCreated(pid=pid, log_path=log_path)
        if task.created_running_at:  # the create started it too (runc run --detach)
            return TaskCreated(pid=pid, log_path=log_path, started_at=task.created_running_at)
        try:
            pid, started_at = await manager.start(cmd.container_id)
        except BaseException:
            # As after a failed TaskStart: the engine then sees a create that did not happen.
            with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                await manager.delete(cmd.container_id)
            raise
        return TaskCreated(pid=pid, log_path=log_path, started_at=started_at)

    async def task_start(cmd: TaskStart) -> TaskStarted:
        pid, started_at = await manager.start(cmd.container_id)
        return TaskStarted(pid=pid, started_at=started_at)

    async def task_kill(cmd: TaskKill) -> Done:
        await manager.kill(cmd.container_id, cmd.signal, cmd.all)
        return Done()

    async def task_delete(cmd: TaskDelete) -> Done:
        await manager.delete(cmd.container_id)
        return Done()

    async def task_purge(cmd: TaskPurge) -> Done:
        await manager.purge(cmd.container_id)
        return Done()

    async def task_get(cmd: TaskGet) -> TaskState:
        return manager.get(cmd.container_id).to_state()

    async def task_list(_: TaskListAll) -> TaskStates:
        return TaskStates(tasks=[t.to_state() for t in manager.tasks.values()])

    async def task_logs(cmd: TaskLogs) -> Done:
        def is_running() -> bool:
            task = manager.tasks.get(cmd.container_id)
            return task is not None and task.state.get("status") in (
                "init",
                "created",
                "running",
                "paused",
            )

        ctx.tg.start_soon(stream_logs, ctx.nc, cmd, paths.log_path(cmd.container_id), is_running)
        return Done()

    async def task_resize(cmd: TaskResize) -> Done:
        await manager.resize(cmd.container_id, cmd.height, cmd.width)
        return Done()

    async def task_exec(cmd: TaskExec) -> TaskExecStarted:
        pid = await manager.exec(cmd.container_id, cmd.exec_id, cmd.process)
        return TaskExecStarted(pid=pid)

    async def task_exec_get(cmd: TaskExecGet) -> TaskExecState:
        return manager.exec_run(cmd.container_id, cmd.exec_id).to_state()

    async def task_exec_resize(cmd: TaskExecResize) -> Done:
        await manager.exec_resize(cmd.container_id, cmd.exec_id, cmd.height, cmd.width)
        return Done()

    async def task_pause(cmd: TaskPause) -> Done:
        await manager.pause(cmd.container_id, True)
        return Done()

    async def task_resume(cmd: TaskResume) -> Done:
        await manager.pause(cmd.container_id, False)
        return Done()

    runc_cmd = [manager.runc, "--root", str(paths.runc_root)]

    def running_task(cid: str) -> int:
        state = manager.get(cid).state
        if state.get("status") not in ("running", "paused"):
            raise Conflict(f"Container {cid} is not running")
        return int(state.get("pid", 0))

    async def task_top(cmd: TaskTop) -> TaskTopResult:
        running_task(cmd.container_id)
        return await resources.top(runc_cmd, cmd.container_id, cmd.ps_args)

    async def task_update(cmd: TaskUpdate) -> Done:
        running_task(cmd.container_id)
        await resources.update(runc_cmd, cmd)
        return Done()

    async def task_stats(cmd: TaskStats) -> TaskStatsSample:
        pid = running_task(cmd.container_id)
        return await anyio.to_thread.run_sync(resources.stats, cmd.container_id, pid)

    async def ping(_: Ping) -> Pong:
        return Pong(service=ctx.name, pid=os.getpid(), node=ctx.node)

    srv.handle(TaskCreate, task_create)
    srv.handle(TaskStart, task_start)
    srv.handle(TaskKill, task_kill)
    srv.handle(TaskDelete, task_delete)
    srv.handle(TaskPurge, task_purge)
    srv.handle(TaskGet, task_get)
    srv.handle(TaskListAll, task_list)
    srv.handle(TaskLogs, task_logs)
    srv.handle(TaskResize, task_resize)

    async def task_network(cmd: TaskNetworkUpdate) -> Done:
        pid = running_task(cmd.container_id)
        if cmd.connect:
            await anyio.to_thread.run_sync(
                manager.net.connect, cmd.container_id, pid, list(cmd.connect), cmd.container_id[:12]
            )
        if cmd.disconnect:
            await anyio.to_thread.run_sync(
                manager.net.disconnect, cmd.container_id, list(cmd.disconnect)
            )
        if cmd.add_hosts:
            # In place (same inode): the file is bind-mounted into the container.
            with (paths.bundle(cmd.container_id) / "hosts").open("a", encoding="utf-8") as f:
                f.write("".join(f"{record}\n" for record in cmd.add_hosts))
        return Done()

    srv.handle(TaskNetworkUpdate, task_network)

    async def network_release(cmd: NetworkRelease) -> Done:
        await anyio.to_thread.run_sync(manager.net.release_network, cmd.network_id)
        return Done()

    srv.handle(NetworkRelease, network_release)
    srv.handle(TaskExec, task_exec)
    srv.handle(TaskExecGet, task_exec_get)
    srv.handle(TaskExecResize, task_exec_resize)
    srv.handle(TaskPause, task_pause)
    srv.handle(TaskResume, task_resume)
    srv.handle(TaskTop, task_top)
    srv.handle(TaskUpdate, task_update)
    srv.handle(TaskStats, task_stats)
    srv.handle(Ping, ping)


async def _close_on_stop(manager: TaskManager) -> None:
    """Runs until the kit cancels the service's task group, i.e. after in-flight requests drained."""
    try:
        await anyio.sleep_forever()
    finally:
        # Shims and containers stay; only our connections to them close.
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await manager.aclose()
        # The default bridge outlives its containers only while the agent runs (netsetup).
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await anyio.to_thread.run_sync(manager.net.release_keepers)
