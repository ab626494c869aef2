"""The agent's task commands: create (and start), start, kill, exec, pause, resize, delete.

Each task is backed by a shim (shim/) the agent spawned from the zygote or re-adopted
(adoption.py); a command is one call on the task's ShimClient, and a failure's kind becomes a
Docker error through runcerrors.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup
from berth_contracts.agent import (
    ExecProcess,
    TaskCreate,
    TaskCreated,
    TaskLogs,
    TaskNetworkUpdate,
    TaskSpec,
)
from berth_contracts.agentops import TaskStats, TaskStatsSample, TaskTop, TaskTopResult, TaskUpdate
from berth_contracts.errors import BerthError, Conflict, InternalError, InvalidParameter, NotFound
from berth_kit.diskmodes import ensure_dir
from berth_kit.tracing import traceparent_of
from nats.aio.client import Client as NATS
from opentelemetry import trace

from berth_agent import resources, runcerrors
from berth_agent.adoption import ShimTracker
from berth_agent.bundle import remove_bundle, write_json
from berth_agent.copyup import copy_up
from berth_agent.etcfiles import joined_etc_files, write_etc_files
from berth_agent.execproc import ExecRun, exec_process
from berth_agent.hostspec import GROUP_ADD_ANNOTATION
from berth_agent.joins import joined_namespaces, network_donor_bundle, shm_source
from berth_agent.logs import stream_logs
from berth_agent.netstart import NetworkStart
from berth_agent.oci import build_config
from berth_agent.paths import Paths
from berth_agent.shim import proto
from berth_agent.shim.frames import Reply
from berth_agent.shim.state import as_state, new_state
from berth_agent.shimclient import ShimClient, ShimGone
from berth_agent.task import Task
from berth_agent.users import resolve_groups, resolve_user
from berth_agent.zygote_client import Zygote

log = logging.getLogger(__name__)
tracer = trace.get_tracer("berth-runtime-agent")

CALL_TIMEOUT = 60.0


def _swap_supported() -> bool:
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or os.path.exists(
        "/sys/fs/cgroup/cgroup.controllers"
    )


class TaskManager(ShimTracker):
    def __init__(
        self, nc: NATS, node: str, paths: Paths, tg: TaskGroup, runc: str = "runc"
    ) -> None:
        super().__init__(nc, node, paths, tg, runc)
        self.zygote = Zygote()
        self.swap_supported = _swap_supported()
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

    def running(self, container_id: str) -> Task:
        task = self.get(container_id)
        if not task.running:
            raise Conflict(f"Container {container_id} is not running")
        return task

    # --- commands ----------------------------------------------------------------------------
    async def create(self, cmd: TaskCreate) -> TaskCreated:
        """TaskCreate, and its start when cmd.start asks for it. Whether the start is one
        `runc run` with the create or a `runc start` after it is decided here, in _create."""
        log_path = str(self.paths.log_path(cmd.container_id))
        try:
            task, started_at = await self._create(cmd)
            pid = task.state["pid"]
            if not cmd.start or started_at:
                return TaskCreated(pid=pid, log_path=log_path, started_at=started_at)
            try:
                pid, started_at = await self.start(cmd.container_id)
            except BaseException:
                # As after a failed TaskStart: the engine then sees a create that did not happen.
                with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                    await self.delete(cmd.container_id)
                raise
        except BerthError as exc:
            raise runcerrors.as_process_setup_error(exc) from exc
        return TaskCreated(pid=pid, log_path=log_path, started_at=started_at)

    async def _create(self, cmd: TaskCreate) -> tuple[Task, str]:
        """The task, and when it was started if the create started it too."""
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
        meta = {"open_stdin": spec.open_stdin, "tty": spec.tty}
        task = Task(id=cid, bundle=bundle, meta=meta, state=new_state(cid))
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
                    conn = await ShimClient.connect(str(self.paths.socket(cid)))
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
                try:
                    reply = await conn.call(
                        {"t": "create", "tp": tp, "start": run_now}, CALL_TIMEOUT
                    )
                except proto.ShimError as exc:
                    raise runcerrors.create_failed(exc) from exc
                started_at = reply.get("started_at", "")
                if task.state["status"] == "init":  # the shim's frames may be ahead of us
                    task.state.update({"status": "created", "pid": reply.get("pid", 0)})
                    if started_at:
                        task.state.update(
                            {"status": "running", "started": True, "started_at": started_at}
                        )
                await network.result()
                # The stdin pipe exists now: hand over input that arrived early, then live input.
                await self._subscribe_stdin(task)
                return task, started_at
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
            config.setdefault("annotations", {})[GROUP_ADD_ANNOTATION] = ",".join(
                map(str, group_add)
            )
        write_json(bundle / "config.json", config)

    async def start(self, cid: str) -> tuple[int, str]:
        task = self.get(cid)
        tp = traceparent_of(trace.get_current_span())
        async with task.lock:
            try:
                reply = await self._call(task, {"t": "start", "tp": tp})
            except proto.ShimError as exc:
                raise runcerrors.start_failed(exc, cid) from exc
            started_at = reply.get("started_at", "")
            if task.state["status"] == "created":
                # Only if no exit frame got here first: a fast process may already be stopped.
                task.state.update({"status": "running", "started": True, "started_at": started_at})
            return reply.get("pid", 0), started_at

    async def kill(self, cid: str, sig: int, all_: bool) -> None:
        task = self.get(cid)
        if task.state["status"] not in ("created", "running", "paused"):
            raise Conflict(f"container {cid} is not running")
        try:
            await self._call(task, {"t": "kill", "sig": sig, "all": all_})
        except proto.ShimError as exc:
            raise runcerrors.kill_failed(exc, cid) from exc

    async def resize(self, cid: str, height: int, width: int) -> None:
        task = self.get(cid)
        if not task.meta.get("tty"):
            return  # no terminal, no window size: dockerd answers 200 here too
        if task.state["status"] not in ("created", "running"):
            raise Conflict(f"container {cid} is not running")
        try:
            await self._call(task, {"t": "resize", "h": height, "w": width})
        except proto.ShimError as exc:
            raise runcerrors.resize_failed(exc) from exc

    async def exec(self, cid: str, eid: str, proc: ExecProcess) -> int:
        task = self.get(cid)
        if task.state["status"] != "running":
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
        try:
            reply = await self._call(task, frame)
        except BaseException as exc:
            del self.execs[eid]
            if isinstance(exc, proto.ShimError):
                raise runcerrors.exec_failed(exc, cid) from exc
            raise
        run.pid = reply.get("pid", 0)
        if proc.open_stdin:
            await self.stdin.ready(eid)
        return run.pid

    async def pause(self, cid: str, pause: bool) -> None:
        """Freeze (runc pause) or thaw the task's cgroup."""
        task = self.get(cid)
        async with task.lock:
            try:
                reply = await self._call(task, {"t": "pause" if pause else "resume"})
            except proto.ShimError as exc:
                raise runcerrors.pause_failed(exc, cid) from exc
            if "state" in reply:
                task.state = as_state(reply["state"], cid)

    def exec_run(self, cid: str, eid: str) -> ExecRun:
        run = self.execs.get(eid)
        if run is None or run.container_id != cid:
            raise NotFound(f"No such exec instance: {eid}")
        return run

    async def exec_resize(self, cid: str, eid: str, height: int, width: int) -> None:
        self.exec_run(cid, eid)
        try:
            await self._call(self.get(cid), {"t": "xresize", "eid": eid, "h": height, "w": width})
        except proto.ShimError as exc:
            raise runcerrors.resize_failed(exc) from exc

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
                if "state" in reply:
                    task.state = as_state(reply["state"], task.id)
            except (proto.ShimError, ShimGone, TimeoutError) as exc:
                log.warning("shim delete of %s: %s; cleaning up here", task.id, exc or "timeout")
                await self._force_delete(task)
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

    async def purge(self, cid: str) -> None:
        await self.delete(cid)
        log_dir = self.paths.log_dir(cid)
        if log_dir.is_dir():
            for entry in log_dir.iterdir():
                with contextlib.suppress(OSError):
                    entry.unlink()
            with contextlib.suppress(OSError):
                log_dir.rmdir()

    async def _call(self, task: Task, frame: dict[str, Any]) -> Reply:
        """One command to the task's shim; a refusal raises proto.ShimError (with its kind)."""
        conn = task.conn
        if conn is None or conn.closed.is_set():
            raise Conflict(f"container {task.id} is not running")
        try:
            return await conn.call(frame, CALL_TIMEOUT)
        except ShimGone as exc:
            raise InternalError(f"shim connection lost: {exc}") from exc
        except TimeoutError as exc:
            raise InternalError("shim did not answer in time") from exc

    async def aclose_and_release(self) -> None:
        """At the agent's stop. Shims and containers stay; only our connections to them close.
        The default bridge outlives its containers only while the agent runs (netsetup)."""
        with anyio.move_on_after(10):
            await self.aclose()
        await anyio.to_thread.run_sync(self.net.release_keepers)

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

    # --- node-side operations on a running task (runc, cgroups, netns; not the shim) ---------
    def _runc_cmd(self) -> list[str]:
        return [self.runc, "--root", str(self.paths.runc_root)]

    async def top(self, cmd: TaskTop) -> TaskTopResult:
        self.running(cmd.container_id)
        return await resources.top(self._runc_cmd(), cmd.container_id, cmd.ps_args)

    async def update(self, cmd: TaskUpdate) -> None:
        self.running(cmd.container_id)
        await resources.update(self._runc_cmd(), cmd)

    async def stats(self, cmd: TaskStats) -> TaskStatsSample:
        pid = self.running(cmd.container_id).state["pid"]
        return await anyio.to_thread.run_sync(resources.stats, cmd.container_id, pid)

    async def update_network(self, cmd: TaskNetworkUpdate) -> None:
        cid = cmd.container_id
        pid = self.running(cid).state["pid"]
        if cmd.connect:
            await anyio.to_thread.run_sync(self.net.connect, cid, pid, list(cmd.connect), cid[:12])
        if cmd.disconnect:
            await anyio.to_thread.run_sync(self.net.disconnect, cid, list(cmd.disconnect))
        if cmd.add_hosts:
            # In place (same inode): the file is bind-mounted into the container.
            with (self.paths.bundle(cid) / "hosts").open("a", encoding="utf-8") as f:
                f.write("".join(f"{record}\n" for record in cmd.add_hosts))

    def follow_logs(self, cmd: TaskLogs) -> None:
        """Stream the log in the background (TaskLogs is answered at once)."""

        def is_running() -> bool:
            task = self.tasks.get(cmd.container_id)
            return task is not None and task.alive

        path = self.paths.log_path(cmd.container_id)
        self.tg.start_soon(stream_logs, self.nc, cmd, path, is_running)
