"""The shim: one per container, the container's parent. Stdlib only (it is forked from the zygote).

It mounts the rootfs, drives runc (create, start, kill, delete), is PR_SET_CHILD_SUBREAPER so the
container's init is re-parented to it, copies the init's stdout/stderr into Docker's json-file log
and (when an agent is connected, link.py) to the agent, at the agent's pace (gate.py), reaps the
init, records the exit status and OOM kill in <bundle>/state.json (atomic rename), and tells the
agent. It never depends on the agent: with no agent connected, live output is dropped (the log
has it) and the exit waits on disk. Execs are execs.py's.

The agent protocol is in proto.py, its types in frames.py. Everything runs on one thread with a
selectors loop whose keys carry their handler. A runc command runs in a short-lived fork that
waits for runc (runc.py): the shim waits for the fork (runc is short), and the processes runc
leaves running come back to the shim as their subreaper.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import sys
import time

from berth_common.gotime import rfc3339nano
from berth_common.mounts import is_mountpoint, libc, umount
from berth_common.reaping import exited_children

from berth_agent.shim import proto
from berth_agent.shim.commands import command_table, dispatch
from berth_agent.shim.execs import DRAIN_AFTER_EXIT, ExecTable
from berth_agent.shim.gate import OutputGate
from berth_agent.shim.link import AgentLink
from berth_agent.shim.log import JsonFileLog, NullLog
from berth_agent.shim.mount import mount_oci
from berth_agent.shim.runc import Runc, RuncError
from berth_agent.shim.state import memory_failcnt, new_state, oom_killed, write_state
from berth_agent.shim.stdin import StdinWriter
from berth_agent.shim.stdio import (
    create_with_pipes,
    create_with_tty,
    run_detached,
    set_winsize,
)

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from berth_agent.shim.frames import Hello, ShimState


DELETE_KILL_WAIT = 10.0
ALIVE = ("created", "running", "paused")


class Shim:
    def __init__(self, params: dict[str, Any]) -> None:
        self.id: str = params["id"]
        self.bundle: str = params["bundle"]
        self.socket_path: str = params["socket"]
        self.rootfs_mount: dict[str, Any] = params["rootfs"]
        self.open_stdin: bool = bool(params.get("open_stdin"))
        self.tty: bool = bool(params.get("tty"))
        self.console_path = self.socket_path[: -len(".sock")] + ".con"
        self.master_fd = -1
        self.runc = Runc(
            params.get("runc_binary", "runc"),
            params["runc_root"],
            os.path.join(self.bundle, "runc-log.json"),
        )
        log = params.get("log") or {}
        self.log: JsonFileLog | NullLog = (
            NullLog()
            if log.get("driver") == "none"
            else JsonFileLog(params["log_path"], log.get("max_size", 0), log.get("max_files", 1))
        )
        self.rootfs = os.path.join(self.bundle, "rootfs")
        self.state: ShimState = new_state(self.id, shim_pid=os.getpid())
        self.sel = selectors.DefaultSelector()
        self.gate = OutputGate(self.sel)  # which output pipes are read now (back-pressure)
        self.link = AgentLink(self.sel, self.gate, lambda frame: dispatch(self, frame), self.hello)
        self.execs = ExecTable(
            self.id, self.bundle, self.console_path[:-4], self.runc, self.sel, self.gate, self.send
        )
        self.pipes: dict[int, int] = {}  # fd -> stream (1 stdout, 2 stderr)
        self.stdin = StdinWriter(self.sel, -1)
        self.init_status: int | None = None
        self.drain_deadline = 0.0
        self.exit_reported = False
        self.pending_delete: tuple[int, str] | None = None
        self.delete_deadline = 0.0
        self.wake_r = -1
        self.runc_deleted = False
        self.done = False
        self.commands = command_table(self)

    # --- set-up ------------------------------------------------------------------------------
    def setup(self) -> None:
        """The wake-up pipe for SIGCHLD, the rootfs, the agent's socket (become_shim did the rest)."""
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, self.on_wake)

        if not os.path.isdir(self.rootfs):  # makedirs(exist_ok) raises inside: memory (4b)
            os.makedirs(self.rootfs, exist_ok=True)
        if not is_mountpoint(self.rootfs):
            m = self.rootfs_mount
            mount_oci(m["type"], m["source"], self.rootfs, list(m.get("options", [])))
        self.link.listen(self.socket_path)
        self.save()

    def save(self) -> None:
        write_state(self.bundle, self.state)

    def hello(self) -> Hello:
        return {"t": "hello", "state": self.state.copy(), "execs": self.execs.summary()}

    # --- main loop ---------------------------------------------------------------------------
    def loop(self) -> None:
        while not self.done:
            now = time.monotonic()
            timeout = 5.0
            if self.init_status is not None and not self.exit_reported:
                timeout = max(0.0, self.drain_deadline - now)
            if self.pending_delete is not None:
                timeout = max(0.0, min(timeout, self.delete_deadline - now))
            timeout = self.execs.next_deadline(timeout, now)
            for key, mask in self.sel.select(timeout):
                try:
                    key.data(mask)
                except Exception as exc:  # noqa: BLE001 - a shim that dies orphans its container
                    print(f"shim {self.id}: {exc!r}", file=sys.stderr, flush=True)
                if self.done:
                    return
            self.check_exit_done()
            self.execs.report_done()
            if self.pending_delete is not None and time.monotonic() >= self.delete_deadline:
                rid, tp = self.pending_delete
                self.pending_delete = None
                self.finish_delete(rid, tp)

    def on_wake(self, mask: int) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 512):
                pass
        self.reap()

    def reap(self) -> None:
        for pid, status in exited_children():
            if pid == self.state["pid"] and self.init_status is None:
                self.on_init_exit(status)
            self.execs.reaped(pid, status)

    # --- agent connection --------------------------------------------------------------------
    def send(self, frame: Mapping[str, Any]) -> None:
        self.link.send(frame)

    def reply(self, rid: int, ok: bool = True, **fields: Any) -> None:
        self.send({"t": "reply", "rid": rid, "ok": ok, **fields})

    def fail(self, rid: int, exc: proto.ShimError) -> None:
        self.reply(rid, False, error=str(exc), kind=exc.kind)

    def span(self, name: str, start: int, end: int, tp: str, **attrs: Any) -> None:
        attrs.setdefault("container.id", self.id)
        self.send({"t": "span", "name": name, "start": start, "end": end, "tp": tp, "attrs": attrs})

    # --- commands ----------------------------------------------------------------------------
    def create(self, rid: int, tp: str, and_start: bool) -> dict[str, Any] | None:
        """runc create; with and_start, `runc run --detach` (create + start, one runc process)."""
        if self.state["status"] != "init":
            raise proto.ShimError(proto.ALREADY_EXISTS, f"container {self.id} already created")
        name = "runc run" if and_start else "runc create"
        launch = run_detached(self.runc, self.bundle, self.id) if and_start else None
        start = time.time_ns()
        try:
            if self.tty:
                created = create_with_tty(
                    self.runc, self.bundle, self.id, self.console_path, self.open_stdin, launch
                )
            else:
                created = create_with_pipes(
                    self.runc, self.bundle, self.id, self.open_stdin, launch
                )
        except RuncError as exc:
            self.span(name, start, time.time_ns(), tp, error=str(exc))
            raise
        for fd, stream in created.outputs:
            self.pipes[fd] = stream
            self.gate.add(fd, "", lambda mask, fd=fd: self.on_pipe(fd))
        self.stdin = StdinWriter(self.sel, created.stdin_fd)
        self.master_fd = created.master_fd
        end = time.time_ns()
        self.state.update({"status": "created", "pid": created.pid})
        if and_start:
            self.started(start, end, tp)
        self.save()
        self.span(name, start, end, tp, **{"container.pid": created.pid})
        if not and_start:
            return {"pid": created.pid}
        self.reply(rid, pid=created.pid, started_at=self.state["started_at"])
        self.trim()
        return None

    def start(self, rid: int, tp: str) -> None:
        if self.state["status"] != "created":
            raise proto.ShimError(
                proto.NOT_RUNNING, f"cannot start a container in the {self.state['status']} state"
            )
        start = time.time_ns()
        self.runc.run(["start", self.id])
        end = time.time_ns()
        self.started(start, end, tp)
        self.save()
        self.span("runc start", start, end, tp, **{"container.pid": self.state["pid"]})
        # Replied before trim(), so the start is answered as soon as runc is done.
        self.reply(rid, pid=self.state["pid"], started_at=self.state["started_at"])
        self.trim()

    def started(self, start: int, end: int, tp: str) -> None:
        self.state.update(
            {
                "status": "running",
                "started": True,
                "started_at": rfc3339nano(end),
                "process_tp": tp,
                "process_start_ns": start,
            }
        )

    def trim(self) -> None:
        """Give back what start-up used and freed: the shim idles for the container's lifetime,
        and glibc would otherwise keep that heap resident (bench/README.md, item 4b)."""
        gc.collect()
        libc().malloc_trim(0)

    def resize(self, height: int, width: int) -> dict[str, Any]:
        if self.master_fd < 0:
            raise proto.ShimError(proto.INVALID, "container has no TTY")
        set_winsize(self.master_fd, height, width)
        return {}

    def check_running(self) -> str:
        status = self.state["status"]
        if status not in ALIVE or self.init_status is not None:
            raise proto.ShimError(proto.NOT_RUNNING, "container not running")
        return status

    def kill(self, sig: int, all_: bool) -> dict[str, Any]:
        status = self.check_running()
        self.runc.run(["kill", *(["--all"] if all_ else []), self.id, str(sig)])
        if status == "paused" and sig in (signal.SIGKILL, signal.SIGTERM):
            # A frozen process never acts on a signal; moby thaws a paused container it stops.
            self.thaw()
        return {}

    def pause(self, pause: bool) -> dict[str, Any]:
        status = self.check_running()
        if status == "created":
            raise proto.ShimError(proto.NOT_RUNNING, "container not running")
        if pause and status == "running":
            self.runc.run(["pause", self.id])
            self.state["status"] = "paused"
            self.save()
        elif not pause and status == "paused":
            self.thaw()
        return {"state": dict(self.state)}

    def thaw(self) -> None:
        self.runc.run(["resume", self.id])
        self.state["status"] = "running"
        self.save()

    def delete(self, rid: int, tp: str) -> None:
        """Replied by finish_delete: at once, or once the init is reaped (its exit recorded)."""
        if self.state["pid"] and self.init_status is None:
            with contextlib.suppress(RuncError):
                self.runc.run(["kill", self.id, "9"])
                if self.state["status"] == "paused":
                    self.thaw()
            self.pending_delete = (rid, tp)
            self.delete_deadline = time.monotonic() + DELETE_KILL_WAIT
            self.reap()
            self.check_exit_done()
            return
        self.finish_delete(rid, tp)

    def finish_delete(self, rid: int, tp: str) -> None:
        error = self.runc_delete(tp) if self.state["status"] != "init" else None
        self.reap()
        with contextlib.suppress(OSError):
            umount(self.rootfs)
        if error is not None:
            self.fail(rid, error)
            return
        self.state["status"] = "deleted"
        self.save()
        self.reply(rid, state=dict(self.state))
        self.link.flush_blocking()
        self.done = True

    def exec(self, frame: dict[str, Any]) -> dict[str, Any]:
        if self.state["status"] != "running" or self.init_status is not None:
            raise proto.ShimError(proto.NOT_RUNNING, f"container {self.id} is not running")
        tp = str(frame.get("tp", ""))
        start = time.time_ns()
        try:
            ex = self.execs.start(frame)
        except RuncError as exc:
            self.span("runc exec", start, time.time_ns(), tp, error=str(exc))
            raise
        attrs = {"exec.id": ex.eid, "exec.pid": ex.pid}
        self.span("runc exec", start, time.time_ns(), tp, **attrs)
        return {"pid": ex.pid}

    # --- output and exit ---------------------------------------------------------------------
    def on_pipe(self, fd: int) -> None:
        chunk = self.gate.read(self.pipes, fd)
        if chunk is None:
            return
        stream, data = chunk
        self.log.write(stream, data)
        offset = self.gate.advance("", len(data))
        self.send({"t": "out", "s": stream, "d": proto.b64(data), "o": offset})

    def on_init_exit(self, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        if code < 0:  # killed by a signal
            code = 128 - code
        # Read before `runc delete` removes the cgroup.
        oom = oom_killed(self.id, bundle=self.bundle)
        if not oom and code == 128 + signal.SIGKILL and memory_failcnt(self.id, bundle=self.bundle):
            oom = True
        self.init_status = status
        self.state.update({"exit_code": code, "oom_killed": oom, "exited_at": rfc3339nano()})
        self.drain_deadline = time.monotonic() + DRAIN_AFTER_EXIT
        self.gate.exited("")

    def check_exit_done(self) -> None:
        """After the init exit: once output is drained (or the deadline passed), record and report."""
        if self.init_status is None or self.exit_reported:
            return
        if self.pipes and self.gate.backlog:
            self.drain_deadline = time.monotonic() + DRAIN_AFTER_EXIT  # waiting for the agent
        if self.pipes and time.monotonic() < self.drain_deadline:
            return
        for fd in list(self.pipes):
            # Output still open after the deadline belongs to a stray process; stop reading.
            self.gate.remove(fd)
            os.close(fd)
        self.pipes.clear()
        self.log.flush_partial()
        self.stdin.discard()
        if self.master_fd >= 0:
            os.close(self.master_fd)
            self.master_fd = -1
        self.state["status"] = "stopped"
        self.save()
        self.exit_reported = True
        self.send({"t": "eof"})
        self.send({"t": "exit", "state": dict(self.state)})
        if self.state["started"]:
            attrs = {
                "container.pid": self.state["pid"],
                "process.exit_code": self.state["exit_code"],
                "container.oom_killed": self.state["oom_killed"],
            }
            end = time.time_ns()
            self.span(
                "container.process",
                self.state["process_start_ns"],
                end,
                self.state["process_tp"],
                **attrs,
            )
        if self.pending_delete is not None:
            rid, tp = self.pending_delete
            self.pending_delete = None
            self.finish_delete(rid, tp)
        else:
            self.delete_runc_container()

    def delete_runc_container(self) -> None:
        """Once the exit is reported, release runc's container (cgroup, state) right away, as
        moby deletes the task on exit: TaskDelete, which follows, then has only the unmount left
        (bench/README.md, change 9). The exit frame is already on the socket."""
        error = self.runc_delete(self.state["process_tp"])
        if error is not None:  # TaskDelete tries again and reports it
            print(f"shim {self.id}: runc delete after exit: {error}", file=sys.stderr, flush=True)

    def runc_delete(self, tp: str) -> RuncError | None:
        """`runc delete --force`, once; runc's error if it failed (a container already gone is
        none)."""
        if self.runc_deleted:
            return None
        start = time.time_ns()
        error: RuncError | None = None
        try:
            self.runc.run(["delete", "--force", self.id])
        except RuncError as exc:
            if exc.kind != proto.NOT_FOUND:
                error = exc
        self.runc_deleted = error is None
        attrs = {"error": str(error)} if error is not None else {}
        self.span("runc delete", start, time.time_ns(), tp, **attrs)
        return error

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.log.close()
        self.link.close(self.socket_path)
