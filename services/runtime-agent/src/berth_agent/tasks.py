"""The agent's tasks: one per container, each backed by a shim it spawned or re-adopted.

The agent keeps no state of its own beyond the bundle directory: meta.json (what the agent needs
to re-adopt: stdin, trace parent) and the shim's state.json. After a restart it reconnects to live
shims and reports exits that happened while it was away (TaskExit may be sent twice; the engine
ignores duplicates).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup
from berth_common.gotime import rfc3339nano
from berth_contracts import subjects
from berth_contracts.agent import (
    ExecProcess,
    TaskCreate,
    TaskExit,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from berth_contracts.codec import encode
from berth_contracts.errors import (
    BerthError,
    Conflict,
    InternalError,
    InvalidParameter,
    NotFound,
)
from berth_contracts.streams import StdinChunk, StdioChunk
from berth_kit.diskmodes import ensure_dir
from berth_kit.tracing import traceparent_of
from nats.aio.client import Client as NATS
from opentelemetry import trace

from berth_agent import shim_proto as proto
from berth_agent.bundle import read_json, remove_bundle, unmount_rootfs, write_json
from berth_agent.copyup import copy_up
from berth_agent.etcfiles import joined_etc_files, write_etc_files
from berth_agent.execproc import ExecRun, exec_process
from berth_agent.hostspec import GROUP_ADD_ANNOTATION
from berth_agent.joins import joined_namespaces, network_donor_bundle, shm_source
from berth_agent.links import ShimConn, ShimGone
from berth_agent.netsetup import NetworkSetup
from berth_agent.netstart import NetworkStart
from berth_agent.oci import build_config
from berth_agent.outflow import OutputFlow
from berth_agent.paths import Paths
from berth_agent.shim_state import read_state, write_state
from berth_agent.spans import ShimSpans
from berth_agent.stdin_router import StdinRouter
from berth_agent.users import resolve_groups, resolve_user
from berth_agent.zygote_client import Zygote

log = logging.getLogger(__name__)
tracer = trace.get_tracer("berth-runtime-agent")

CALL_TIMEOUT = 60.0
UNKNOWN_EXIT = 255


def _swap_supported() -> bool:
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or os.path.exists(
        "/sys/fs/cgroup/cgroup.controllers"
    )


def create_error(detail: str) -> BerthError:
    """runc's create error, worded the way dockerd reports it (and classified the same way)."""
    message = (
        "failed to create task for container: failed to create shim task: "
        f"OCI runtime create failed: {detail}: unknown"
    )
    lowered = detail.lower()
    if any(
        s in lowered
        for s in ("executable file not found", "no such file or directory", "permission denied")
    ):
        return InvalidParameter(message)
    return InternalError(message)


# shim state.json status -> TaskState.status
_STATUS: dict[str, TaskStatus] = {
    "init": "created",
    "created": "created",
    "running": "running",
    "paused": "paused",
    "stopped": "stopped",
    "deleted": "stopped",
}


@dataclass
class Task:
    id: str
    bundle: Path
    meta: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    conn: ShimConn | None = None
    deleting: bool = False
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    created_running_at: str = ""  # set when TaskCreate's runc run started the process too
    network_released: anyio.Event | None = None  # set once the teardown begun at exit is done

    def to_state(self) -> TaskState:
        status = str(self.state.get("status", "unknown"))
        return TaskState(
            container_id=self.id,
            status=_STATUS.get(status, "unknown"),
            pid=int(self.state.get("pid", 0)),
            exit_code=int(self.state.get("exit_code", 0)),
            oom_killed=bool(self.state.get("oom_killed", False)),
            started_at=str(self.state.get("started_at", "")),
            exited_at=str(self.state.get("exited_at", "")),
        )


@dataclass
class AdoptedExecs:
    """What a (re)connected shim's hello said about execs the agent did not know."""

    finished: list[str] = field(default_factory=list)  # exited while no agent listened
    acknowledged: list[str] = field(default_factory=list)  # exits this agent already had
    with_stdin: list[str] = field(default_factory=list)  # running, with an open stdin


class TaskManager:
    def __init__(
        self, nc: NATS, node: str, paths: Paths, tg: TaskGroup, runc: str = "runc"
    ) -> None:
        self.nc = nc
        self.node = node
        self.paths = paths
        self.tg = tg
        self.runc = runc
        self.zygote = Zygote()
        self.spans = ShimSpans()
        self.tasks: dict[str, Task] = {}
        self.swap_supported = _swap_supported()
        self.net = NetworkSetup(paths.exec_root)
        self.closing = False
        self.stdin = StdinRouter(nc, self._deliver_stdin)
        self.outflow = OutputFlow(nc, self._hold_output)
        self.execs: dict[str, ExecRun] = {}
        # 0700, set again on every start: bundles hold rootfs mounts and config.json (the
        # environment); runc's state and the log directory likewise.
        for d in (paths.exec_root / "agent", paths.runc_root, paths.data_root / "agent"):
            ensure_dir(d)
        for d in (paths.tasks_dir, paths.sockets_dir):
            d.mkdir(parents=True, exist_ok=True)

    def get(self, container_id: str) -> Task:
        task = self.tasks.get(container_id)
        if task is None:
            raise NotFound(f"No such container: {container_id}")
        return task

    # --- shim frames -------------------------------------------------------------------------
    async def _on_frame(self, task: Task, frame: dict[str, Any]) -> None:
        kind = frame.get("t")
        if kind in ("out", "xout"):
            stream_id = task.id if kind == "out" else str(frame.get("eid"))
            offset = int(frame.get("o", 0))
            data = proto.unb64(str(frame.get("d", "")))
            chunk = StdioChunk(stream=int(frame.get("s", 1)), data=data, offset=offset)
            await self.nc.publish(subjects.stdio_out(stream_id), encode(chunk))
            await self.outflow.published(stream_id, offset + len(data))
        elif kind == "eof":
            await self._publish_eof(task.id)
        elif kind == "exit":
            task.state = dict(frame.get("state") or task.state)
            self._release_network_early(task)
            await self._publish_exit(task)
        elif kind == "xexit":
            eid = str(frame.get("eid"))
            run = self.execs.get(eid)
            if run is not None:
                # Known before the eof goes out: a client that inspects after its stream ended
                # reads the exit code.
                run.running, run.exit_code = False, int(frame.get("code", 0))
            self.stdin.forget(eid)
            await self._publish_eof(eid)
            if task.conn is not None:
                with contextlib.suppress(ShimGone):
                    await task.conn.send({"t": "xack", "eid": eid})  # the shim may forget it now
        elif kind == "span":
            self.spans.emit(frame)
        elif kind == "hello":
            task.state = dict(frame.get("state") or task.state)

    def _release_network_early(self, task: Task) -> None:
        """A started task's network goes at its exit (a TaskDelete or TaskPurge always follows
        it, as dockerd releases it at the exit): begun now, it overlaps the shim's `runc
        delete` and the engine's round trip instead of following them."""
        if task.network_released is not None or not task.state.get("started"):
            return
        if not self._wants_conn(task) or not self.net.attached(task.id):
            return
        released = task.network_released = anyio.Event()

        async def release() -> None:
            try:
                await anyio.to_thread.run_sync(self.net.teardown, task.id)
            finally:
                released.set()

        self.tg.start_soon(release)

    async def _publish_eof(self, stream_id: str) -> None:
        """The end of a container's or an exec's output stream (its readers stop there)."""
        self.outflow.ended(stream_id)
        await self.nc.publish(
            subjects.stdio_out(stream_id), encode(StdioChunk(stream=1, data=b"", eof=True))
        )

    async def _publish_exit(self, task: Task) -> None:
        if not task.state.get("started"):
            return  # never started (a failed or deleted create): nobody waits for this exit
        event = TaskExit(
            container_id=task.id,
            pid=int(task.state.get("pid", 0)),
            exit_code=int(task.state.get("exit_code", 0)),
            oom_killed=bool(task.state.get("oom_killed", False)),
            exited_at=str(task.state.get("exited_at", "")) or rfc3339nano(),
            node=self.node,
        )
        await self.nc.publish(subjects.task_events(self.node), encode(event))

    def _attach(self, task: Task, conn: ShimConn) -> AdoptedExecs:
        task.conn = conn
        task.state = dict(conn.hello.get("state") or task.state)
        # Before the connection is served: an exit frame that follows the hello must find the
        # exec registered, or it would be taken for running forever.
        adopted = self._adopt_execs(task, conn.hello.get("execs") or {})
        self.tg.start_soon(self._serve_conn, task, conn)
        return adopted

    def _adopt_execs(self, task: Task, summary: dict[str, Any]) -> AdoptedExecs:
        """Take over the execs the shim reports: a restarted agent knew none of them."""
        adopted = AdoptedExecs()
        for eid, info in dict(summary.get("running") or {}).items():
            if eid not in self.execs:
                self.execs[eid] = ExecRun(exec_id=eid, container_id=task.id, pid=int(info["pid"]))
                if info.get("stdin"):
                    adopted.with_stdin.append(eid)
        for eid, code in dict(summary.get("done") or {}).items():
            run = self.execs.get(eid)
            if run is None:
                run = self.execs[eid] = ExecRun(exec_id=eid, container_id=task.id, pid=0)
            if run.running:
                run.running, run.exit_code = False, int(code)
                adopted.finished.append(eid)
            else:
                adopted.acknowledged.append(eid)
        return adopted

    async def _resume_execs(self, conn: ShimConn, adopted: AdoptedExecs) -> None:
        """Exits that happened while no agent listened end their streams now (the engine's exec
        watcher then reads the code); stdin of running execs flows again."""
        for eid in adopted.finished:
            await self._publish_eof(eid)
        for eid in adopted.with_stdin:
            await self.stdin.ready(eid)
        with contextlib.suppress(ShimGone):
            for eid in (*adopted.finished, *adopted.acknowledged):
                await conn.send({"t": "xack", "eid": eid})

    async def _serve_conn(self, task: Task, conn: ShimConn) -> None:
        async def on_frame(frame: dict[str, Any]) -> None:
            try:
                await self._on_frame(task, frame)
            except Exception:  # noqa: BLE001 - one lost publish must not take the agent down
                log.exception("handling %s frame of %s", frame.get("t"), task.id)

        await conn.run(on_frame)
        if task.conn is conn:
            task.conn = None
        if self._wants_conn(task):
            # The shim went away without being asked to: find it again or settle its exit.
            await self._connect_or_settle(task)

    def _wants_conn(self, task: Task) -> bool:
        return not task.deleting and not self.closing and self.tasks.get(task.id) is task

    def _shim_alive(self, task: Task) -> bool:
        """Whether the shim recorded in state.json still runs (a forked zygote, not a zombie)."""
        pid = int((read_state(str(task.bundle)) or {}).get("shim_pid", 0))
        if pid <= 0:
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"berth_agent.zygote" in cmdline

    # --- re-adoption -------------------------------------------------------------------------
    async def adopt_all(self) -> None:
        await self.stdin.start()
        await self.outflow.start(self.tg)
        for bundle in sorted(self.paths.tasks_dir.iterdir()):
            if not bundle.is_dir():
                continue
            meta = read_json(bundle / "meta.json")
            if meta is None:
                log.warning("removing incomplete bundle %s", bundle)
                await anyio.to_thread.run_sync(self.net.teardown, bundle.name)
                await anyio.to_thread.run_sync(remove_bundle, bundle)
                continue
            task = Task(
                id=bundle.name, bundle=bundle, meta=meta, state=read_state(str(bundle)) or {}
            )
            self.tasks[task.id] = task
            if not await self._adopt_once(task):
                # Its shim lives but does not answer yet (busy in a runc call): keep trying.
                self.tg.start_soon(self._connect_or_settle, task)

    async def _adopt_once(self, task: Task) -> bool:
        """One attempt to reconnect; True once the task is settled (adopted or reported dead)."""
        try:
            conn = await ShimConn.connect(str(self.paths.socket(task.id)))
        except (OSError, TimeoutError, ShimGone, anyio.EndOfStream, anyio.IncompleteRead):
            if self._shim_alive(task):
                return False
            await self._reconcile_dead(task)
            return True
        adopted = self._attach(task, conn)
        await self._subscribe_stdin(task)
        await self._resume_execs(conn, adopted)
        log.info("adopted shim of %s (%s)", task.id, task.state.get("status"))
        if task.state.get("status") == "stopped":
            # It exited while we were away (or before TaskDelete acknowledged it): report again.
            await self._publish_eof(task.id)
            await self._publish_exit(task)
        return True

    async def _connect_or_settle(self, task: Task) -> None:
        delay = 0.1
        while self._wants_conn(task) and task.conn is None:
            try:
                if await self._adopt_once(task):
                    return
            except Exception:  # noqa: BLE001 - keep trying; never crash the agent's task group
                log.exception("re-adopting %s", task.id)
            await anyio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _reconcile_dead(self, task: Task) -> None:
        """The shim is gone: report its recorded exit, or 255 if it died before recording one."""
        state = read_state(str(task.bundle)) or {}
        if state.get("status") in ("stopped", "deleted"):
            task.state = state
        else:
            await self._runc("delete", "--force", task.id)
            await anyio.to_thread.run_sync(unmount_rootfs, task.bundle)
            state.update(status="stopped", exit_code=UNKNOWN_EXIT, exited_at=rfc3339nano())
            task.state = state
            with contextlib.suppress(OSError):
                write_state(str(task.bundle), state)
        log.info("shim of %s is gone; exit %s", task.id, task.state.get("exit_code"))
        await self._publish_eof(task.id)
        await self._publish_exit(task)

    async def _runc(self, *args: str) -> str:
        cmd = [self.runc, "--root", str(self.paths.runc_root), *args]
        with anyio.move_on_after(30):
            result = await anyio.run_process(cmd, check=False)
            if result.returncode != 0:
                return result.stderr.decode(errors="replace").strip()
        return ""

    # --- stdin -------------------------------------------------------------------------------
    async def _deliver_stdin(self, cid: str, chunk: StdinChunk) -> None:
        run = self.execs.get(cid)
        task = self.tasks.get(run.container_id if run is not None else cid)
        conn = task.conn if task is not None else None
        if conn is None:
            return
        with contextlib.suppress(ShimGone):
            if run is not None:
                if chunk.data:
                    await conn.send({"t": "xstdin", "eid": cid, "d": proto.b64(chunk.data)})
                if chunk.eof:
                    await conn.send({"t": "xstdin_close", "eid": cid})
                return
            if chunk.data:
                await conn.send({"t": "stdin", "d": proto.b64(chunk.data)})
            if chunk.eof:
                await conn.send({"t": "stdin_close"})

    async def _hold_output(self, stream_id: str, pause: bool) -> None:
        """Tell the shim to stop (or go on) reading a stream's pipes: its readers lag."""
        run = self.execs.get(stream_id)
        task = self.tasks.get(run.container_id if run is not None else stream_id)
        if task is None or task.conn is None:
            return
        frame = {"t": "opause" if pause else "oresume", "eid": stream_id if run else ""}
        with contextlib.suppress(ShimGone):
            await task.conn.send(frame)

    async def _subscribe_stdin(self, task: Task) -> None:
        if task.meta.get("open_stdin"):
            await self.stdin.ready(task.id)

    # --- commands ----------------------------------------------------------------------------
    async def create(self, cmd: TaskCreate) -> Task:
        spec: TaskSpec = cmd.spec
        cid = cmd.container_id
        if not cmd.rootfs or cmd.rootfs[0].target != "/":
            raise InvalidParameter('TaskCreate needs a root mount (target "/") first in rootfs')
        if cid in self.tasks or self.paths.bundle(cid).exists():
            raise Conflict(f"task {cid}: already exists")
        tp = traceparent_of(trace.get_current_span())
        joined = joined_namespaces(self.tasks, spec, self.net.netns_dir)
        etc_donor = network_donor_bundle(self.tasks, spec)
        bundle = self.paths.bundle(cid)
        bundle.mkdir(mode=0o711)
        task = Task(id=cid, bundle=bundle, meta={"open_stdin": spec.open_stdin, "tty": spec.tty})
        self.tasks[cid] = task
        network = NetworkStart(self.net, cid, spec)
        try:
            async with task.lock:
                if spec.networks:
                    # The namespace is made and attached while the shim spawns and runc
                    # creates; runc joins it, and the process starts only once it is ready.
                    self.tg.start_soon(network.run)
                    joined = {**joined, "network": str(self.net.netns_path(cid))}
                write_json(bundle / "meta.json", task.meta)
                self.paths.log_dir(cid).mkdir(parents=True, exist_ok=True)
                root = cmd.rootfs[0]
                params = {
                    "id": cid,
                    "bundle": str(bundle),
                    "socket": str(self.paths.socket(cid)),
                    "runc_root": str(self.paths.runc_root),
                    "runc_binary": self.runc,
                    "log_path": str(self.paths.log_path(cid)),
                    "log": msgspec.to_builtins(cmd.log),
                    "open_stdin": spec.open_stdin,
                    "tty": spec.tty,
                    "rootfs": {
                        "type": root.type,
                        "source": root.source,
                        "options": list(root.options),
                    },
                }
                with tracer.start_as_current_span("shim.spawn"):
                    await self.zygote.spawn(params)
                    conn = await ShimConn.connect(str(self.paths.socket(cid)))
                self._attach(task, conn)
                with tracer.start_as_current_span("bundle.write"):
                    await anyio.to_thread.run_sync(
                        self._write_config, cid, spec, cmd, bundle, joined, etc_donor
                    )
                if spec.networks and (network.quick or network.done.is_set()):
                    # A netlink attachment takes about as long as the spawn and the bundle:
                    # waiting for it lets one `runc run` do create and start.
                    await network.result()
                # Nothing to do between create and start (no network to wait for): one runc run.
                run_now = cmd.start and network.done.is_set()
                frame = {"t": "create", "tp": tp, **({"start": True} if run_now else {})}
                reply = await conn.call(frame, CALL_TIMEOUT)
                if not reply.get("ok"):
                    raise create_error(str(reply.get("error", "")))
                if task.state.get("status") == "init":  # the shim's frames may be ahead of us
                    task.state.update(status="created", pid=int(reply.get("pid", 0)))
                    if run_now:
                        task.state.update(
                            status="running", started=True, started_at=str(reply["started_at"])
                        )
                task.created_running_at = str(reply.get("started_at", ""))
                await network.result()
                # The stdin pipe exists now: hand over input that arrived early, then live input.
                await self._subscribe_stdin(task)
                return task
        except BaseException:
            with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                await network.done.wait()  # its teardown must not race its setup
                await self._destroy(task)
            raise

    def _write_config(
        self,
        cid: str,
        spec: TaskSpec,
        cmd: TaskCreate,
        bundle: Path,
        joined: dict[str, str],
        etc_donor: Path | None = None,
    ) -> None:
        rootfs = str(bundle / "rootfs")
        user = resolve_user(rootfs, spec.user)
        group_add = resolve_groups(rootfs, list(spec.group_add)) if spec.group_add else []
        if group_add:  # moby's getUser: the user's groups, then --group-add's
            user = dataclasses.replace(user, additional_gids=[*user.additional_gids, *group_add])
        if spec.copy_up:
            copy_up(rootfs, list(spec.copy_up), list(cmd.rootfs[1:]))
        # A joiner shares the files of the container whose namespace it joins, as in dockerd.
        etc = joined_etc_files(etc_donor) if etc_donor else write_etc_files(bundle, cid, spec)
        config = build_config(
            cid, spec, user, list(cmd.rootfs[1:]), etc, self.swap_supported, joined,
            shm_source(self.tasks, spec, bundle),
        )  # fmt: skip
        if group_add:  # for the execs, which get them too
            config.setdefault("annotations", {})[GROUP_ADD_ANNOTATION] = ",".join(map(str, group_add))
        write_json(bundle / "config.json", config)

    async def start(self, cid: str) -> tuple[int, str]:
        task = self.get(cid)
        tp = traceparent_of(trace.get_current_span())
        async with task.lock:
            conn = self._conn(task)
            reply = await self._call(conn, {"t": "start", "tp": tp})
            if not reply.get("ok"):
                error = str(reply.get("error", ""))
                if error.startswith("cannot start"):
                    raise Conflict(f"{error}: {cid}")
                raise InternalError(f"OCI runtime start failed: {error}: unknown")
            if task.state.get("status") == "created":
                # Only if no exit frame got here first: a fast process may already be stopped.
                task.state.update(
                    status="running", started=True, started_at=str(reply.get("started_at", ""))
                )
            return int(reply.get("pid", 0)), str(reply.get("started_at", ""))

    async def kill(self, cid: str, sig: int, all_: bool) -> None:
        task = self.get(cid)
        if task.state.get("status") not in ("created", "running", "paused"):
            raise Conflict(f"container {cid} is not running")
        conn = self._conn(task)
        reply = await self._call(conn, {"t": "kill", "sig": sig, "all": all_})
        if not reply.get("ok"):
            error = str(reply.get("error", ""))
            if "not running" in error or "stopped" in error:
                raise Conflict(f"container {cid} is not running")
            raise InternalError(f"OCI runtime kill failed: {error}: unknown")

    async def resize(self, cid: str, height: int, width: int) -> None:
        task = self.get(cid)
        if not task.meta.get("tty"):
            return  # no terminal, no window size: dockerd answers 200 here too
        if task.state.get("status") not in ("created", "running"):
            raise Conflict(f"container {cid} is not running")
        reply = await self._call(self._conn(task), {"t": "resize", "h": height, "w": width})
        if not reply.get("ok"):
            raise InternalError(f"resize failed: {reply.get('error', '')}")

    async def exec(self, cid: str, eid: str, proc: ExecProcess) -> int:
        task = self.get(cid)
        if task.state.get("status") != "running":
            raise Conflict(f"Container {cid} is not running")
        if eid in self.execs:
            raise Conflict(f"Error: Exec command {eid} has already run")
        process = await anyio.to_thread.run_sync(exec_process, task.bundle, proc)
        frame = {
            "t": "exec",
            "eid": eid,
            "proc": process,
            "stdin": proc.open_stdin,
            "h": proc.height,
            "w": proc.width,
            "tp": traceparent_of(trace.get_current_span()),
        }
        run = self.execs[eid] = ExecRun(exec_id=eid, container_id=cid, pid=0)
        reply = await self._call(self._conn(task), frame)
        if not reply.get("ok"):
            del self.execs[eid]
            error = str(reply.get("error", ""))
            if "not running" in error:
                raise Conflict(f"Container {cid} is not running")
            raise InternalError(f"OCI runtime exec failed: exec failed: {error}: unknown")
        run.pid = int(reply.get("pid", 0))
        if proc.open_stdin:
            await self.stdin.ready(eid)
        return run.pid

    async def pause(self, cid: str, pause: bool) -> None:
        """Freeze (runc pause) or thaw the task's cgroup."""
        task = self.get(cid)
        async with task.lock:
            reply = await self._call(self._conn(task), {"t": "pause" if pause else "resume"})
            if not reply.get("ok"):
                raise Conflict(f"Container {cid} is not running")
            if reply.get("state"):
                task.state = dict(reply["state"])

    def exec_run(self, cid: str, eid: str) -> ExecRun:
        run = self.execs.get(eid)
        if run is None or run.container_id != cid:
            raise NotFound(f"No such exec instance: {eid}")
        return run

    async def exec_resize(self, cid: str, eid: str, height: int, width: int) -> None:
        self.exec_run(cid, eid)
        task = self.get(cid)
        frame = {"t": "xresize", "eid": eid, "h": height, "w": width}
        reply = await self._call(self._conn(task), frame)
        if not reply.get("ok"):
            raise InternalError(f"resize failed: {reply.get('error', '')}")

    async def delete(self, cid: str) -> None:
        task = self.tasks.get(cid)
        if task is None:
            # Idempotent: a bundle left without a task (or nothing at all) is simply cleaned.
            await anyio.to_thread.run_sync(self.net.teardown, cid)
            await anyio.to_thread.run_sync(remove_bundle, self.paths.bundle(cid))
            return
        async with task.lock:
            await self._destroy(task)

    async def _destroy(self, task: Task) -> None:
        tp = traceparent_of(trace.get_current_span())
        task.deleting = True
        conn = task.conn
        if conn is not None and not conn.closed.is_set():
            try:
                reply = await conn.call({"t": "delete", "tp": tp}, CALL_TIMEOUT)
            except (ShimGone, TimeoutError):
                reply = {"ok": False, "error": "shim gone"}
            if not reply.get("ok"):
                log.warning("shim delete of %s: %s; cleaning up here", task.id, reply.get("error"))
                await self._force_delete(task)
            elif reply.get("state"):
                task.state = dict(reply["state"])
            with anyio.move_on_after(5):
                await conn.closed.wait()
        else:
            await self._force_delete(task)
        self.stdin.forget(task.id)
        for eid in [e for e, r in self.execs.items() if r.container_id == task.id]:
            self.stdin.forget(eid)
            self.outflow.ended(eid)
            del self.execs[eid]
        if task.network_released is not None:
            with anyio.move_on_after(CALL_TIMEOUT):
                await task.network_released.wait()  # then the teardown below has nothing left
        await anyio.to_thread.run_sync(self.net.teardown, task.id)
        await anyio.to_thread.run_sync(remove_bundle, task.bundle)
        with contextlib.suppress(FileNotFoundError):
            self.paths.socket(task.id).unlink()
        if self.tasks.get(task.id) is task:
            del self.tasks[task.id]

    async def _force_delete(self, task: Task) -> None:
        """Without the shim's help: kill the container, and the shim if it still lingers."""
        await self._runc("delete", "--force", task.id)
        if self._shim_alive(task):
            shim_pid = int((read_state(str(task.bundle)) or {}).get("shim_pid", 0))
            with contextlib.suppress(ProcessLookupError):
                os.kill(shim_pid, signal.SIGKILL)

    async def purge(self, cid: str) -> None:
        await self.delete(cid)
        log_dir = self.paths.log_dir(cid)
        if log_dir.is_dir():
            for entry in log_dir.iterdir():
                with contextlib.suppress(OSError):
                    entry.unlink()
            with contextlib.suppress(OSError):
                log_dir.rmdir()

    def _conn(self, task: Task) -> ShimConn:
        if task.conn is None or task.conn.closed.is_set():
            raise Conflict(f"container {task.id} is not running")
        return task.conn

    async def _call(self, conn: ShimConn, frame: dict[str, Any]) -> dict[str, Any]:
        try:
            return await conn.call(frame, CALL_TIMEOUT)
        except ShimGone as exc:
            raise InternalError(f"shim connection lost: {exc}") from exc
        except TimeoutError as exc:
            raise InternalError("shim did not answer in time") from exc

    async def aclose(self) -> None:
        self.closing = True
        await self.stdin.stop()
        await self.outflow.stop()
        for task in list(self.tasks.values()):
            if task.conn is not None:
                with contextlib.suppress(Exception):
                    await task.conn.aclose()
        await self.zygote.close()
        self.spans.shutdown()
