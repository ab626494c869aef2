"""A small test client: RPC to the agent plus subscriptions to its streams and events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from berth_contracts import subjects
from berth_contracts.agent import (
    ExecProcess,
    TaskCreate,
    TaskCreated,
    TaskDelete,
    TaskExec,
    TaskExecGet,
    TaskExecStarted,
    TaskExecState,
    TaskExit,
    TaskGet,
    TaskSpec,
    TaskStart,
    TaskStarted,
    TaskState,
)
from berth_contracts.base import Command, Ping, Pong, Reply
from berth_contracts.codec import decode
from berth_contracts.lifecycle import Mount
from berth_contracts.streams import StdioChunk
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcClient
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

R = TypeVar("R", bound=Reply)


class Client:
    def __init__(self, nc: NATS, node: str) -> None:
        self.nc = nc
        self.node = node
        self.rpc = RpcClient(nc)
        self.exits: dict[str, list[TaskExit]] = {}
        self._exit_event = anyio.Event()

    async def call(self, cmd: Command, reply: type[R], wait_s: float = 60.0) -> R:
        return await self.rpc.request(subjects.agent_rpc(self.node), cmd, reply, timeout=wait_s)

    async def wait_ready(self, wait_s: float = 30.0) -> None:
        with anyio.fail_after(wait_s):
            while True:
                try:
                    await self.rpc.request(
                        subjects.health("berth-runtime-agent"), Ping(), Pong, timeout=1, attempts=1
                    )
                    await self.call(TaskGet(container_id="probe"), TaskState, wait_s=2)
                except Exception as exc:  # noqa: BLE001
                    if type(exc).__name__ == "NotFound":
                        return
                    await anyio.sleep(0.1)

    async def watch_exits(self) -> None:
        async def on_exit(msg: Msg) -> None:
            ev = decode(msg.data, TaskExit)
            self.exits.setdefault(ev.container_id, []).append(ev)
            self._exit_event.set()

        await self.nc.subscribe(subjects.task_events(self.node), cb=on_exit)
        await self.nc.flush()

    async def wait_exit(self, cid: str, wait_s: float = 30.0) -> TaskExit:
        with anyio.fail_after(wait_s):
            while not self.exits.get(cid):
                self._exit_event = anyio.Event()
                await self._exit_event.wait()
        return self.exits[cid][0]

    async def collect_output(self, cid: str) -> Output:
        out = Output()

        async def on_chunk(msg: Msg) -> None:
            out.add(decode(msg.data, StdioChunk))

        await self.nc.subscribe(subjects.stdio_out(cid), cb=on_chunk)
        await self.nc.flush()
        return out

    async def run(
        self, cid: str, rootfs: Path, spec: TaskSpec, start: bool = True
    ) -> tuple[TaskCreated, TaskStarted | None]:
        created = await self.call(
            TaskCreate(container_id=cid, spec=spec, rootfs=bind_root(rootfs)), TaskCreated
        )
        started = await self.call(TaskStart(container_id=cid), TaskStarted) if start else None
        return created, started

    async def run_to_exit(
        self, cid: str, rootfs: Path, spec: TaskSpec
    ) -> tuple[TaskCreated, TaskExit, Output]:
        """Create and start; return once the task has exited and its output has ended."""
        out = await self.collect_output(cid)
        created, _ = await self.run(cid, rootfs, spec)
        ev = await self.wait_exit(cid)
        await out.wait_eof()
        return created, ev, out

    async def delete(self, cid: str) -> None:
        from berth_contracts.base import Done

        await self.call(TaskDelete(container_id=cid), Done)

    async def exec_start(self, cid: str, eid: str, process: ExecProcess) -> TaskExecStarted:
        return await self.call(TaskExec(container_id=cid, exec_id=eid, process=process), TaskExecStarted)

    async def exec_state(self, cid: str, eid: str) -> TaskExecState:
        return await self.call(TaskExecGet(container_id=cid, exec_id=eid), TaskExecState)


class Output:
    def __init__(self) -> None:
        self.chunks: list[StdioChunk] = []
        self.eof = anyio.Event()
        self.order: list[str] = []

    def add(self, chunk: StdioChunk) -> None:
        self.chunks.append(chunk)
        if chunk.eof:
            self.eof.set()

    def data(self, stream: int) -> bytes:
        return b"".join(c.data for c in self.chunks if c.stream == stream)

    async def wait_eof(self, wait_s: float = 30.0) -> None:
        with anyio.fail_after(wait_s):
            await self.eof.wait()


def bind_root(path: Path) -> list[Mount]:
    return [Mount(type="bind", source=str(path), target="/", options=["rbind", "rw"])]


def spec(*args: str, **kw: Any) -> TaskSpec:
    env = kw.pop("env", ["PATH=/bin:/usr/bin"])
    return TaskSpec(args=list(args), env=env, **kw)


@asynccontextmanager
async def client(nats_url: str, node: str, ready: bool = True) -> AsyncIterator[Client]:
    """ready=False: no wait for the agent (to subscribe before it starts; call wait_ready)."""
    nc = await connect(nats_url, "agent-test")
    try:
        c = Client(nc, node)
        await c.watch_exits()
        if ready:
            await c.wait_ready()
        yield c
    finally:
        await nc.close()
