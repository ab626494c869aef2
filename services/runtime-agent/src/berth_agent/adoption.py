"""The agent's live view of its shims: one client per task, the frames each shim sends, and
re-adoption of live shims after an agent restart.

The agent keeps no state of its own beyond the bundle directory: meta.json (what re-adoption
needs: stdin, tty) and the shim's state.json. After a restart it reconnects to live shims and
reports exits that happened while it was away (TaskExit may be sent twice; the engine ignores
duplicates). A shim that is gone without recording an exit is reported as exit 255.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from berth_common.gotime import rfc3339nano
from berth_contracts import subjects
from berth_contracts.agent import TaskExit
from berth_contracts.codec import encode
from berth_contracts.streams import StdinChunk, StdioChunk
from nats.aio.client import Client as NATS

from berth_agent.bundle import read_json, remove_bundle, unmount_rootfs
from berth_agent.execproc import ExecRun
from berth_agent.netsetup import NetworkSetup
from berth_agent.outflow import OutputFlow
from berth_agent.paths import Paths
from berth_agent.shim import proto
from berth_agent.shim.frames import ExecSummary, ShimEvent
from berth_agent.shim.main import TITLE as SHIM_TITLE
from berth_agent.shim.state import as_state, new_state, read_state, write_state
from berth_agent.shimclient import ShimClient, ShimGone
from berth_agent.spans import ShimSpans
from berth_agent.stdin_router import StdinRouter
from berth_agent.task import AdoptedExecs, Task

log = logging.getLogger(__name__)

UNKNOWN_EXIT = 255


class ShimTracker:
    """What TaskManager's commands build on: the tasks, their shim clients and streams."""

    def __init__(self, nc: NATS, node: str, paths: Paths, tg: TaskGroup, runc: str) -> None:
        self.nc = nc
        self.node = node
        self.paths = paths
        self.tg = tg
        self.runc = runc
        self.spans = ShimSpans()
        self.tasks: dict[str, Task] = {}
        self.execs: dict[str, ExecRun] = {}
        self.net = NetworkSetup(paths.exec_root)
        self.closing = False
        self.stdin = StdinRouter(nc, self._deliver_stdin)
        self.outflow = OutputFlow(nc, self._hold_output)

    # --- shim frames -------------------------------------------------------------------------
    async def _on_frame(self, task: Task, frame: ShimEvent) -> None:
        if frame["t"] == "out" or frame["t"] == "xout":
            stream_id = task.id if frame["t"] == "out" else frame["eid"]
            data = proto.unb64(frame["d"])
            chunk = StdioChunk(stream=frame["s"], data=data, offset=frame["o"])
            await self.nc.publish(subjects.stdio_out(stream_id), encode(chunk))
            await self.outflow.published(stream_id, frame["o"] + len(data))
        elif frame["t"] == "eof":
            await self._publish_eof(task.id)
        elif frame["t"] == "exit":
            task.state = as_state(frame["state"], task.id)
            self._release_network_early(task)
            await self._publish_exit(task)
        elif frame["t"] == "xexit":
            eid = frame["eid"]
            run = self.execs.get(eid)
            if run is not None:
                # Known before the eof goes out: a client that inspects after its stream ended
                # reads the exit code.
                run.running, run.exit_code = False, frame["code"]
            self.stdin.forget(eid)
            await self._publish_eof(eid)
            if task.conn is not None:
                with contextlib.suppress(ShimGone):
                    await task.conn.send({"t": "xack", "eid": eid})  # the shim may forget it now
        elif frame["t"] == "span":
            self.spans.emit(frame)

    def _release_network_early(self, task: Task) -> None:
        """A started task's network goes at its exit (a TaskDelete or TaskPurge always follows
        it, as dockerd releases it at the exit): begun now, it overlaps the shim's `runc
        delete` and the engine's round trip instead of following them."""
        if task.network_released is not None or not task.state["started"]:
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
        if not task.state["started"]:
            return  # never started (a failed or deleted create): nobody waits for this exit
        event = TaskExit(
            container_id=task.id,
            pid=task.state["pid"],
            exit_code=task.state["exit_code"],
            oom_killed=task.state["oom_killed"],
            exited_at=task.state["exited_at"] or rfc3339nano(),
            node=self.node,
        )
        await self.nc.publish(subjects.task_events(self.node), encode(event))

    def _attach(self, task: Task, conn: ShimClient) -> AdoptedExecs:
        task.conn = conn
        task.state = as_state(conn.hello["state"], task.id)
        # Before the connection is served: an exit frame that follows the hello must find the
        # exec registered, or it would be taken for running forever.
        adopted = self._adopt_execs(task, conn.hello["execs"])
        self.tg.start_soon(self._serve_conn, task, conn)
        return adopted

    def _adopt_execs(self, task: Task, summary: ExecSummary) -> AdoptedExecs:
        """Take over the execs the shim reports: a restarted agent knew none of them."""
        adopted = AdoptedExecs()
        for eid, info in summary["running"].items():
            if eid not in self.execs:
                self.execs[eid] = ExecRun(exec_id=eid, container_id=task.id, pid=info["pid"])
                if info["stdin"]:
                    adopted.with_stdin.append(eid)
        for eid, code in summary["done"].items():
            run = self.execs.get(eid)
            if run is None:
                run = self.execs[eid] = ExecRun(exec_id=eid, container_id=task.id, pid=0)
            if run.running:
                run.running, run.exit_code = False, code
                adopted.finished.append(eid)
            else:
                adopted.acknowledged.append(eid)
        return adopted

    async def _resume_execs(self, conn: ShimClient, adopted: AdoptedExecs) -> None:
        """Exits that happened while no agent listened end their streams now (the engine's exec
        watcher then reads the code); stdin of running execs flows again."""
        for eid in adopted.finished:
            await self._publish_eof(eid)
        for eid in adopted.with_stdin:
            await self.stdin.ready(eid)
        with contextlib.suppress(ShimGone):
            for eid in (*adopted.finished, *adopted.acknowledged):
                await conn.send({"t": "xack", "eid": eid})

    async def _serve_conn(self, task: Task, conn: ShimClient) -> None:
        async def on_frame(frame: dict[str, Any]) -> None:
            try:
                await self._on_frame(task, frame)  # type: ignore[arg-type]  # by its "t"
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

    def _shim_pid(self, task: Task) -> int:
        """The shim recorded in state.json if it still runs (a berth shim, not a zombie), or 0."""
        pid = (read_state(str(task.bundle)) or new_state(task.id))["shim_pid"]
        if pid <= 0:
            return 0
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return 0
        # Shims started before they were named keep the zygote's command line.
        ours = cmdline.startswith(SHIM_TITLE.encode()) or b"berth_agent" in cmdline
        return pid if ours else 0

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
            state = read_state(str(bundle)) or new_state(bundle.name)
            task = Task(id=bundle.name, bundle=bundle, meta=meta, state=state)
            self.tasks[task.id] = task
            if not await self._adopt_once(task):
                # Its shim lives but does not answer yet (busy in a runc call): keep trying.
                self.tg.start_soon(self._connect_or_settle, task)

    async def _adopt_once(self, task: Task) -> bool:
        """One attempt to reconnect; True once the task is settled (adopted or reported dead)."""
        try:
            conn = await ShimClient.connect(str(self.paths.socket(task.id)))
        except (OSError, TimeoutError, ShimGone, anyio.EndOfStream, anyio.IncompleteRead):
            if self._shim_pid(task):
                return False
            await self._reconcile_dead(task)
            return True
        adopted = self._attach(task, conn)
        await self._subscribe_stdin(task)
        await self._resume_execs(conn, adopted)
        log.info("adopted shim of %s (%s)", task.id, task.state["status"])
        if task.state["status"] == "stopped":
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
        state = read_state(str(task.bundle)) or new_state(task.id)
        if state["status"] not in ("stopped", "deleted"):
            await self._runc("delete", "--force", task.id)
            await anyio.to_thread.run_sync(unmount_rootfs, task.bundle)
            state.update(
                {"status": "stopped", "exit_code": UNKNOWN_EXIT, "exited_at": rfc3339nano()}
            )
            with contextlib.suppress(OSError):
                write_state(str(task.bundle), state)
        task.state = state
        log.info("shim of %s is gone; exit %s", task.id, task.state["exit_code"])
        await self._publish_eof(task.id)
        await self._publish_exit(task)

    async def _force_delete(self, task: Task) -> None:
        """Without the shim's help: kill the container, and the shim if it still lingers."""
        await self._runc("delete", "--force", task.id)
        shim_pid = self._shim_pid(task)
        if shim_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(shim_pid, signal.SIGKILL)

    async def _runc(self, *args: str) -> str:
        cmd = [self.runc, "--root", str(self.paths.runc_root), *args]
        with anyio.move_on_after(30):
            result = await anyio.run_process(cmd, check=False)
            if result.returncode != 0:
                return result.stderr.decode(errors="replace").strip()
        return ""

    # --- stdin and output pacing -------------------------------------------------------------
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
