"""docker exec: exec instances (in memory, as in dockerd), started through the container's shim.

While an exec runs, the engine listens to its output subject: the eof chunk means it exited, and
the agent knows its exit code by then (it records the code before it publishes the eof). That is
when `exec_die` is published; healthchecks read the output from the same watcher.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup
from berth_contracts import subjects
from berth_contracts.agent import (
    ExecProcess,
    TaskExec,
    TaskExecGet,
    TaskExecResize,
    TaskExecStarted,
    TaskExecState,
)
from berth_contracts.base import Done
from berth_contracts.codec import decode
from berth_contracts.docker import Event
from berth_contracts.errors import BerthError, Conflict, InvalidParameter, NotFound
from berth_contracts.execs import (
    ExecConfig,
    ExecCreate,
    ExecCreated,
    ExecDetail,
    ExecGet,
    ExecInspect,
    ExecProcessConfig,
    ExecResize,
    ExecStart,
)
from berth_contracts.streams import StdioChunk
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from berth_engine.containers.records import Record
from berth_engine.containers.taskspec import process_env, replace_or_append_env
from berth_engine.core import EngineCore

log = logging.getLogger(__name__)

# moby answers a failed exec start with this exit code in /exec/{id}/json.
EXEC_START_FAILED = 126
OUTPUT_KEEP = 4096  # bytes of output kept per exec (what a healthcheck reports)

OnExit = Callable[["ExecEntry"], Awaitable[None]]


@dataclass
class ExecEntry:
    id: str
    container_id: str
    node: str
    config: ExecConfig
    running: bool = False
    ran: bool = False
    pid: int = 0
    exit_code: int | None = None
    output: bytearray = field(default_factory=bytearray)
    done: anyio.Event = field(default_factory=anyio.Event)
    watcher: anyio.CancelScope | None = None

    def inspect(self) -> ExecInspect:
        cmd = list(self.config.cmd or [])
        return ExecInspect(
            id=self.id,
            running=self.running,
            exit_code=self.exit_code,
            process_config=ExecProcessConfig(
                tty=self.config.tty,
                entrypoint=cmd[0] if cmd else "",
                arguments=cmd[1:],
                privileged=self.config.privileged,
                user=self.config.user or None,
            ),
            open_stdin=self.config.attach_stdin,
            open_stderr=self.config.attach_stderr,
            open_stdout=self.config.attach_stdout,
            can_remove=False,
            container_id=self.container_id,
            detach_keys=self.config.detach_keys,
            pid=self.pid,
        )


def exec_env(rec: Record, config: ExecConfig) -> list[str]:
    """moby: the daemon's environment for the container (TERM by the exec's TTY), then the
    container's Env, then the exec's own entries, each replacing the same key."""
    env = process_env(rec, rec.link_env)
    if config.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    return replace_or_append_env(env, list(config.env or []))


class ExecService:
    def __init__(self, core: EngineCore, tg: TaskGroup) -> None:
        self.core = core
        self.tg = tg
        self.execs: dict[str, ExecEntry] = {}

    # --- API ---------------------------------------------------------------------------------
    async def create(self, cmd: ExecCreate) -> ExecCreated:
        rec = self.core.store.lookup(cmd.ref)
        entry = self.new_exec(rec, cmd.config)
        await self.core.events.container(
            rec, f"exec_create: {' '.join(entry.config.cmd or [])}", {"execID": entry.id}
        )
        return ExecCreated(id=entry.id)

    def new_exec(self, rec: Record, config: ExecConfig) -> ExecEntry:
        if rec.state.status == "paused":
            raise Conflict(f"Container {rec.id} is paused, unpause the container before exec")
        if not rec.alive:
            raise Conflict(f"Container {rec.id} is not running")
        if not config.cmd:
            raise InvalidParameter("No exec command specified")
        entry = ExecEntry(
            id=secrets.token_hex(32), container_id=rec.id, node=rec.node, config=config
        )
        self.execs[entry.id] = entry
        return entry

    def entry(self, exec_id: str) -> ExecEntry:
        entry = self.execs.get(exec_id)
        if entry is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return entry

    async def agent_state(self, entry: ExecEntry) -> TaskExecState | None:
        """What the agent knows of the exec; None when it cannot say within 10 s."""
        try:
            return await self.core.agent(
                entry.node,
                TaskExecGet(container_id=entry.container_id, exec_id=entry.id),
                TaskExecState,
                within=10.0,
            )
        except (BerthError, TimeoutError):
            return None

    async def get(self, cmd: ExecGet) -> ExecDetail:
        entry = self.entry(cmd.exec_id)
        if entry.running:
            # The watcher may not have seen the eof yet; the agent knows first.
            state = await self.agent_state(entry)
            if state is not None and not state.running:
                entry.running, entry.exit_code = False, state.exit_code
        return ExecDetail(exec=entry.inspect(), tty=entry.config.tty, ran=entry.ran)

    async def start(self, cmd: ExecStart) -> Done:
        entry = self.entry(cmd.exec_id)
        await self.run(entry, cmd.height, cmd.width)
        return Done()

    async def resize(self, cmd: ExecResize) -> Done:
        entry = self.entry(cmd.exec_id)
        if not entry.running:
            raise Conflict(f"Exec {entry.id} is not running")
        await self.core.agent(
            entry.node,
            TaskExecResize(
                container_id=entry.container_id,
                exec_id=entry.id,
                height=cmd.height,
                width=cmd.width,
            ),
            Done,
            within=10.0,
        )
        return Done()

    # --- running -----------------------------------------------------------------------------
    async def run(
        self, entry: ExecEntry, height: int = 0, width: int = 0, on_exit: OnExit | None = None
    ) -> None:
        """Start the exec; returns once it runs (its exit is watched in the background)."""
        if entry.running:
            raise Conflict(f"Error: Exec command {entry.id} is already running")
        if entry.ran:
            raise Conflict(f"Error: Exec command {entry.id} has already run")
        rec = self.core.store.lookup(entry.container_id)
        if not rec.alive:
            raise Conflict(f"container {rec.id} is not running")
        entry.ran = entry.running = True
        config = entry.config
        process = ExecProcess(
            args=list(config.cmd or []),
            env=exec_env(rec, config),
            cwd=config.working_dir,
            user=config.user,
            tty=config.tty,
            open_stdin=config.attach_stdin,
            privileged=config.privileged,
            height=height,
            width=width,
        )
        # Subscribed before the process exists, so no output (and no eof) is missed.
        sub = await self.core.nc.subscribe(subjects.stdio_out(entry.id))
        try:
            with self.core.container_span(rec, "container exec") as span:
                span.set_attribute("exec.id", entry.id)
                started = await self.core.agent(
                    entry.node,
                    TaskExec(container_id=rec.id, exec_id=entry.id, process=process),
                    TaskExecStarted,
                    attempts=1,
                )
        except BaseException:
            entry.running = False
            entry.exit_code = EXEC_START_FAILED
            entry.done.set()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            raise
        entry.pid = started.pid
        await self.core.events.container(
            rec, f"exec_start: {' '.join(config.cmd or [])}", {"execID": entry.id}
        )
        self.tg.start_soon(self._watch, entry, sub, on_exit)

    async def subscribe(self, nc: NATS) -> None:
        await nc.subscribe(subjects.docker_events("container", "*"), cb=self._on_event)

    async def _on_event(self, msg: Msg) -> None:
        with contextlib.suppress(Exception):
            event = decode(msg.data, Event)
            if event.Action == "destroy":
                self.forget_container(event.Actor.ID)

    def running_ids(self, container_id: str) -> list[str] | None:
        """moby's ExecIDs: the container's execs that are running now; null when none."""
        ids = [e.id for e in self.execs.values() if e.container_id == container_id and e.running]
        return ids or None

    def forget_container(self, container_id: str) -> None:
        """A removed container's execs go with it (moby), watchers included."""
        for entry in [e for e in self.execs.values() if e.container_id == container_id]:
            del self.execs[entry.id]
            if entry.watcher is not None:
                entry.watcher.cancel()

    async def _watch(self, entry: ExecEntry, sub: object, on_exit: OnExit | None) -> None:
        try:
            with anyio.CancelScope() as entry.watcher:
                async for msg in sub.messages:  # type: ignore[attr-defined]
                    chunk = decode(msg.data, StdioChunk)
                    room = OUTPUT_KEEP - len(entry.output)
                    if room > 0 and chunk.data:
                        entry.output += chunk.data[:room]
                    if chunk.eof:
                        break
            if entry.watcher.cancel_called:
                entry.running = False
                entry.done.set()
                return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()  # type: ignore[attr-defined]
        if entry.running:
            state = await self.agent_state(entry)
            if state is not None:
                entry.exit_code = state.exit_code
            entry.running = False
        entry.done.set()
        rec = self.core.store.get(entry.container_id)
        if rec is not None:
            await self.core.events.container(
                rec, "exec_die", {"execID": entry.id, "exitCode": str(entry.exit_code or 0)}
            )
        if on_exit is not None:
            await on_exit(entry)
