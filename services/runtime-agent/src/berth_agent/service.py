"""Wiring: the agent's RPC handlers on subjects.agent_rpc(node), all registered in register()."""

from __future__ import annotations

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
from berth_contracts.agentops import TaskStats, TaskTop, TaskUpdate
from berth_contracts.errors import BerthError
from berth_kit.rpc import RpcServer
from berth_kit.service import ServiceContext

from berth_agent import runcerrors
from berth_agent.paths import Paths
from berth_agent.tasks import TaskManager


async def main(ctx: ServiceContext) -> None:
    manager = TaskManager(
        ctx.nc, ctx.node, Paths.from_env(), ctx.tg, runc=os.environ.get("BERTH_RUNC", "runc")
    )
    await manager.adopt_all()
    ctx.on_stop(manager.aclose_and_release, timeout=20)
    srv = ctx.server(subjects.agent_rpc(ctx.node), AgentRequest, queue=subjects.AGENT_QUEUE)
    register(srv, manager)


def register(srv: RpcServer, m: TaskManager) -> None:
    """Every AgentRequest member's handler (the kit answers Ping); the logic is the task
    manager's."""

    async def create(cmd: TaskCreate) -> TaskCreated:
        return await m.create(cmd)

    async def start(cmd: TaskStart) -> TaskStarted:
        try:
            pid, started_at = await m.start(cmd.container_id)
        except BerthError as exc:
            raise runcerrors.as_process_setup_error(exc) from exc
        return TaskStarted(pid=pid, started_at=started_at)

    async def kill(cmd: TaskKill) -> Done:
        await m.kill(cmd.container_id, cmd.signal, cmd.all)
        return Done()

    async def delete(cmd: TaskDelete) -> Done:
        await m.delete(cmd.container_id)
        return Done()

    async def purge(cmd: TaskPurge) -> Done:
        await m.purge(cmd.container_id)
        return Done()

    async def get(cmd: TaskGet) -> TaskState:
        return m.get(cmd.container_id).to_state()

    async def list_all(_: TaskListAll) -> TaskStates:
        return TaskStates(tasks=[t.to_state() for t in m.tasks.values()])

    async def logs(cmd: TaskLogs) -> Done:
        m.follow_logs(cmd)
        return Done()

    async def resize(cmd: TaskResize) -> Done:
        await m.resize(cmd.container_id, cmd.height, cmd.width)
        return Done()

    async def exec_(cmd: TaskExec) -> TaskExecStarted:
        return TaskExecStarted(pid=await m.exec(cmd.container_id, cmd.exec_id, cmd.process))

    async def exec_get(cmd: TaskExecGet) -> TaskExecState:
        return m.exec_run(cmd.container_id, cmd.exec_id).to_state()

    async def exec_resize(cmd: TaskExecResize) -> Done:
        await m.exec_resize(cmd.container_id, cmd.exec_id, cmd.height, cmd.width)
        return Done()

    async def pause(cmd: TaskPause) -> Done:
        await m.pause(cmd.container_id, True)
        return Done()

    async def resume(cmd: TaskResume) -> Done:
        await m.pause(cmd.container_id, False)
        return Done()

    async def update(cmd: TaskUpdate) -> Done:
        await m.update(cmd)
        return Done()

    async def network(cmd: TaskNetworkUpdate) -> Done:
        await m.update_network(cmd)
        return Done()

    async def release(cmd: NetworkRelease) -> Done:
        await anyio.to_thread.run_sync(m.net.release_network, cmd.network_id)
        return Done()

    srv.handle(TaskCreate, create)
    srv.handle(TaskStart, start)
    srv.handle(TaskKill, kill)
    srv.handle(TaskDelete, delete)
    srv.handle(TaskPurge, purge)
    srv.handle(TaskGet, get)
    srv.handle(TaskListAll, list_all)
    srv.handle(TaskLogs, logs)
    srv.handle(TaskResize, resize)
    srv.handle(TaskExec, exec_)
    srv.handle(TaskExecGet, exec_get)
    srv.handle(TaskExecResize, exec_resize)
    srv.handle(TaskPause, pause)
    srv.handle(TaskResume, resume)
    srv.handle(TaskTop, m.top)
    srv.handle(TaskUpdate, update)
    srv.handle(TaskStats, m.stats)
    srv.handle(TaskNetworkUpdate, network)
    srv.handle(NetworkRelease, release)

