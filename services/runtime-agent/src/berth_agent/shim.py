"""The shim: one per container, the container's parent. Stdlib only (it is forked from the zygote).

It mounts the rootfs, drives runc (create, start, kill, delete), is PR_SET_CHILD_SUBREAPER so the
container's init is re-parented to it, copies the init's stdout/stderr into Docker's json-file log
and (when an agent is connected) to the agent, at the agent's pace (shim_gate), reaps the init, records the exit status and OOM
kill in <bundle>/state.json (atomic rename), and tells the agent. It never depends on the agent:
with no agent connected, live output is dropped (the log has it) and the exit waits on disk.

The agent protocol is in shim_proto. Everything runs on one thread with a selectors loop: runc
commands run synchronously (they are short), so nothing else reaps their children meanwhile.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import selectors
import signal
import socket
import sys
import time

from berth_common.gotime import rfc3339nano
from berth_common.mounts import is_mountpoint, umount

from berth_agent import shim_proto as proto
from berth_agent.shim_exec import Exec, start_exec
from berth_agent.shim_gate import OUTBUF_SOFT_LIMIT, OutputGate
from berth_agent.shim_log import JsonFileLog, NullLog
from berth_agent.shim_mount import mount_oci
from berth_agent.shim_runc import Runc, RuncError
from berth_agent.shim_state import memory_failcnt, oom_killed, write_state
from berth_agent.shim_stdio import create_with_pipes, create_with_tty, run_detached, set_winsize

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PR_SET_CHILD_SUBREAPER = 36
DRAIN_AFTER_EXIT = 2.0  # seconds to wait for the output pipes to close after the init exited
DELETE_KILL_WAIT = 10.0
# Exec exits no agent has acknowledged yet (it may have been down when they happened): the next
# agent learns them from the hello frame. Bounded: a healthcheck runs an exec every interval.
DONE_EXECS_KEPT = 256
READ_SIZE = 64 * 1024


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
        self.state: dict[str, Any] = {
            "id": self.id,
            "status": "init",
            "pid": 0,
            "shim_pid": os.getpid(),
            "started": False,
            "started_at": "",
            "exit_code": 0,
            "oom_killed": False,
            "exited_at": "",
            "process_tp": "",
            "process_start_ns": 0,
        }
        self.sel = selectors.DefaultSelector()
        self.gate = OutputGate(self.sel)  # which output pipes are read now (back-pressure)
        self.listener: socket.socket | None = None
        self.conn: socket.socket | None = None
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.pending_spans: list[dict[str, Any]] = []
        self.pipes: dict[int, int] = {}  # fd -> stream (1 stdout, 2 stderr)
        self.stdin_fd = -1
        self.stdin_buf = bytearray()
        self.stdin_closing = False
        self.init_status: int | None = None
        self.drain_deadline = 0.0
        self.exit_reported = False
        self.pending_delete: tuple[int, str] | None = None
        self.delete_deadline = 0.0
        self.wake_r = -1
        self.runc_deleted = False
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.done = False
        self.execs: dict[str, Exec] = {}
        self.exec_stdin: dict[str, bytearray] = {}
        self.exec_closing: set[str] = set()  # stdin to close once its buffer is written
        self.done_execs: dict[str, int] = {}  # exec id -> exit code, until an agent acks it

    # --- set-up ------------------------------------------------------------------------------
    def setup(self) -> None:
        self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        # The shim must outlive memory pressure inside its own container.
        with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
            f.write("-999")
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")

        os.makedirs(self.rootfs, exist_ok=True)
        if not is_mountpoint(self.rootfs):
            m = self.rootfs_mount
            mount_oci(m["type"], m["source"], self.rootfs, list(m.get("options", [])))

        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        os.makedirs(os.path.dirname(self.socket_path), exist_ok=True)
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        lst.listen(4)
        lst.setblocking(False)
        self.listener = lst
        self.sel.register(lst, selectors.EVENT_READ, "accept")
        self.save()

    def save(self) -> None:
        write_state(self.bundle, self.state)

    # --- main loop ---------------------------------------------------------------------------
    def loop(self) -> None:
        while not self.done:
            now = time.monotonic()
            timeout = 5.0
            if self.init_status is not None and not self.exit_reported:
                timeout = max(0.0, self.drain_deadline - now)
            if self.pending_delete is not None:
                timeout = max(0.0, min(timeout, self.delete_deadline - now))
            for ex in self.execs.values():
                if ex.exit_code is not None:
                    timeout = max(0.0, min(timeout, ex.drain_deadline - now))
            for key, mask in self.sel.select(timeout):
                try:
                    self.dispatch(key, mask)
                except Exception as exc:  # noqa: BLE001 - a shim that dies orphans its container
                    print(f"shim {self.id}: {exc!r}", file=sys.stderr, flush=True)
                if self.done:
                    return
            self.check_exit_done()
            self.check_execs_done()
            if self.pending_delete is not None and time.monotonic() >= self.delete_deadline:
                rid, tp = self.pending_delete
                self.pending_delete = None
                self.finish_delete(rid, tp)

    def dispatch(self, key: selectors.SelectorKey, mask: int) -> None:
        tag = key.data
        if tag == "wake":
            self.on_wake()
        elif tag == "accept":
            self.on_accept()
        elif tag == "conn":
            if mask & selectors.EVENT_READ:
                self.on_conn_readable()
            if mask & selectors.EVENT_WRITE and self.conn is not None:
                self.flush_out()
        elif tag == "pipe":
            self.on_pipe(key.fd)
        elif tag == "stdin":
            self.flush_stdin()
        elif isinstance(tag, tuple) and tag[0] == "xpipe":
            self.on_exec_pipe(tag[1], key.fd)
        elif isinstance(tag, tuple) and tag[0] == "xstdin":
            self.flush_exec_stdin(tag[1])

    def on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 512):
                pass
        self.reap()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.state["pid"] and self.init_status is None:
                self.on_init_exit(status)
            for ex in self.execs.values():
                if ex.pid == pid and ex.exit_code is None:
                    code = os.waitstatus_to_exitcode(status)
                    ex.exit_code = 128 - code if code < 0 else code
                    ex.drain_deadline = time.monotonic() + DRAIN_AFTER_EXIT
                    self.gate.exited(ex.eid)

    # --- agent connection --------------------------------------------------------------------
    def on_accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        # One agent at a time: a new connection (a restarted agent) replaces the old one.
        self.drop_conn()
        conn.setblocking(False)
        self.conn = conn
        self.inbuf.clear()
        self.outbuf.clear()
        self.sel.register(conn, selectors.EVENT_READ, "conn")
        self.send({"t": "hello", "state": dict(self.state), "execs": self.exec_summary()})
        spans, self.pending_spans = self.pending_spans, []
        for span in spans:
            self.send(span)

    def drop_conn(self) -> None:
        if self.conn is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(self.conn)
        with contextlib.suppress(OSError):
            self.conn.close()
        self.conn = None
        self.outbuf.clear()
        self.gate.reset()

    def send(self, frame: dict[str, Any]) -> None:
        if self.conn is None:  # no agent: output is dropped (the log has it), spans kept a while
            if frame.get("t") == "span" and len(self.pending_spans) < 64:
                self.pending_spans.append(frame)
            return
        self.outbuf += proto.encode(frame)
        self.flush_out()

    def flush_out(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            while self.outbuf:
                n = conn.send(self.outbuf)
                del self.outbuf[:n]
        except BlockingIOError:
            pass
        except OSError:
            self.drop_conn()
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbuf else 0)
        self.sel.modify(conn, events, "conn")
        # Past the limit, output waits in the pipes (the processes block) until the agent reads.
        self.gate.set_backlog(len(self.outbuf) > OUTBUF_SOFT_LIMIT)

    def flush_out_blocking(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while self.conn is not None and self.outbuf and time.monotonic() < deadline:
            self.flush_out()
            if self.outbuf:
                time.sleep(0.01)

    def on_conn_readable(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            data = conn.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop_conn()
            return
        self.inbuf += data
        if len(self.inbuf) > proto.MAX_LINE:
            self.drop_conn()
            return
        while self.conn is not None and not self.done:
            nl = self.inbuf.find(b"\n")
            if nl < 0:
                break
            line = bytes(self.inbuf[:nl])
            del self.inbuf[: nl + 1]
            try:
                frame = proto.decode(line)
            except ValueError:
                continue
            self.on_command(frame)

    def reply(self, rid: int, ok: bool = True, **fields: Any) -> None:
        self.send({"t": "reply", "rid": rid, "ok": ok, **fields})

    def span(self, name: str, start: int, end: int, tp: str, **attrs: Any) -> None:
        attrs.setdefault("container.id", self.id)
        self.send({"t": "span", "name": name, "start": start, "end": end, "tp": tp, "attrs": attrs})

    # --- commands ----------------------------------------------------------------------------
    def on_command(self, frame: dict[str, Any]) -> None:
        kind = frame.get("t")
        rid = int(frame.get("rid", 0))
        tp = str(frame.get("tp", ""))
        try:
            if kind == "create":
                self.cmd_create(rid, tp, bool(frame.get("start")))
            elif kind == "start":
                self.cmd_start(rid, tp)
            elif kind == "kill":
                self.cmd_kill(rid, int(frame.get("sig", 15)), bool(frame.get("all")))
            elif kind == "delete":
                self.cmd_delete(rid, tp)
            elif kind == "state":
                self.reply(rid, state=dict(self.state))
            elif kind == "stdin":
                self.write_stdin(proto.unb64(str(frame.get("d", ""))))
            elif kind == "stdin_close":
                self.close_stdin()
            elif kind == "resize":
                self.cmd_resize(rid, int(frame.get("h", 0)), int(frame.get("w", 0)))
            elif kind in ("pause", "resume"):
                self.cmd_pause(rid, kind == "pause")
            elif kind == "exec":
                self.cmd_exec(rid, frame)
            elif kind == "xstdin":
                self.write_exec_stdin(str(frame.get("eid")), proto.unb64(str(frame.get("d", ""))))
            elif kind == "xstdin_close":
                self.write_exec_stdin(str(frame.get("eid")), b"", close=True)
            elif kind == "xresize":
                self.cmd_exec_resize(rid, frame)
            elif kind == "xack":
                self.done_execs.pop(str(frame.get("eid")), None)
            elif kind in ("opause", "oresume"):  # the agent's readers are a window behind
                self.gate.hold(str(frame.get("eid", "")), kind == "opause")
            elif rid:
                self.reply(rid, False, error=f"unknown shim command {kind!r}")
        except RuncError as exc:
            self.reply(rid, False, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the shim must keep serving its container
            self.reply(rid, False, error=f"{type(exc).__name__}: {exc}")

    def cmd_create(self, rid: int, tp: str, and_start: bool = False) -> None:
        """runc create; with and_start, `runc run --detach` (create + start, one runc process)."""
        if self.state["status"] != "init":
            self.reply(rid, False, error=f"container {self.id} already created")
            return
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
            self.reply(rid, False, error=str(exc))
            return
        for fd, stream in created.outputs:
            self.pipes[fd] = stream
            self.gate.add(fd, "", "pipe")
        self.stdin_fd = created.stdin_fd
        self.master_fd = created.master_fd
        end = time.time_ns()
        if not and_start:
            self.state.update(status="created", pid=created.pid)
            self.save()
            self.span(name, start, end, tp, **{"container.pid": created.pid})
            self.reply(rid, pid=created.pid)
            return
        self.state.update(
            status="running",
            pid=created.pid,
            started=True,
            started_at=rfc3339nano(end),
            process_tp=tp,
            process_start_ns=start,
        )
        self.save()
        self.span(name, start, end, tp, **{"container.pid": created.pid})
        self.reply(rid, pid=created.pid, started_at=self.state["started_at"])
        self.trim()

    def cmd_resize(self, rid: int, height: int, width: int) -> None:
        if self.master_fd < 0:
            self.reply(rid, False, error="container has no TTY")
            return
        set_winsize(self.master_fd, height, width)
        self.reply(rid)

    def cmd_start(self, rid: int, tp: str) -> None:
        if self.state["status"] != "created":
            self.reply(
                rid, False, error=f"cannot start a container in the {self.state['status']} state"
            )
            return
        start = time.time_ns()
        self.runc.run(["start", self.id])
        end = time.time_ns()
        self.state.update(
            status="running",
            started=True,
            started_at=rfc3339nano(end),
            process_tp=tp,
            process_start_ns=start,
        )
        self.save()
        self.span("runc start", start, end, tp, **{"container.pid": self.state["pid"]})
        self.reply(rid, pid=self.state["pid"], started_at=self.state["started_at"])
        self.trim()

    def trim(self) -> None:
        """Give back what start-up used and freed: the shim idles for the container's lifetime,
        and glibc would otherwise keep that heap resident (bench/README.md, item 4b)."""
        gc.collect()
        self.libc.malloc_trim(0)

    def cmd_kill(self, rid: int, sig: int, all_: bool) -> None:
        status = self.state["status"]
        if status not in ("created", "running", "paused") or self.init_status is not None:
            self.reply(rid, False, error="container not running")
            return
        self.runc.run(["kill", *(["--all"] if all_ else []), self.id, str(sig)])
        if status == "paused" and sig in (signal.SIGKILL, signal.SIGTERM):
            # A frozen process never acts on a signal; moby thaws a paused container it stops.
            self.thaw()
        self.reply(rid)

    def cmd_pause(self, rid: int, pause: bool) -> None:
        status = self.state["status"]
        if self.init_status is not None or status not in ("running", "paused"):
            self.reply(rid, False, error="container not running")
            return
        if pause and status == "running":
            self.runc.run(["pause", self.id])
            self.state["status"] = "paused"
            self.save()
        elif not pause and status == "paused":
            self.thaw()
        self.reply(rid, state=dict(self.state))

    def thaw(self) -> None:
        self.runc.run(["resume", self.id])
        self.state["status"] = "running"
        self.save()

    def cmd_delete(self, rid: int, tp: str) -> None:
        if self.state["pid"] and self.init_status is None:
            # Kill first and delete once the init is reaped, so its exit is recorded.
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
        error = self.runc_delete(tp) if self.state["status"] != "init" else ""
        self.reap()
        with contextlib.suppress(OSError):
            umount(self.rootfs)
        if error:
            self.reply(rid, False, error=error)
            return
        self.state["status"] = "deleted"
        self.save()
        self.reply(rid, state=dict(self.state))
        self.flush_out_blocking()
        self.done = True

    # --- exec --------------------------------------------------------------------------------
    def cmd_exec(self, rid: int, frame: dict[str, Any]) -> None:
        eid = str(frame.get("eid", ""))
        if self.state["status"] != "running" or self.init_status is not None:
            self.reply(rid, False, error=f"container {self.id} is not running")
            return
        if not eid or eid in self.execs:
            self.reply(rid, False, error=f"exec {eid!r} already exists")
            return
        start = time.time_ns()
        console = f"{self.console_path[:-4]}.x{eid[:8]}"
        try:
            created = start_exec(
                self.runc,
                self.bundle,
                self.id,
                eid,
                dict(frame.get("proc") or {}),
                console,
                bool(frame.get("stdin")),
            )
        except RuncError as exc:
            self.span("runc exec", start, time.time_ns(), str(frame.get("tp", "")), error=str(exc))
            raise
        ex = Exec(eid, created)
        self.execs[eid] = ex
        if ex.master_fd >= 0 and frame.get("h") and frame.get("w"):
            set_winsize(ex.master_fd, int(frame["h"]), int(frame["w"]))
        for fd in ex.pipes:
            self.gate.add(fd, eid, ("xpipe", eid))
        self.span(
            "runc exec",
            start,
            time.time_ns(),
            str(frame.get("tp", "")),
            **{"exec.id": eid, "exec.pid": ex.pid},
        )
        self.reply(rid, pid=ex.pid)

    def cmd_exec_resize(self, rid: int, frame: dict[str, Any]) -> None:
        ex = self.execs.get(str(frame.get("eid")))
        if ex is not None and ex.master_fd >= 0:
            set_winsize(ex.master_fd, int(frame.get("h", 0)), int(frame.get("w", 0)))
        self.reply(rid)

    def on_exec_pipe(self, eid: str, fd: int) -> None:
        ex = self.execs.get(eid)
        stream = ex.pipes.get(fd) if ex is not None else None
        if ex is None or stream is None:
            return
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # a pty whose other side is gone reads EIO
            data = b""
        if not data:
            self.gate.remove(fd)
            os.close(fd)
            del ex.pipes[fd]
            return
        # Exec output is not logged (as in Docker); it goes to whoever started the exec.
        offset = self.gate.advance(eid, len(data))
        self.send({"t": "xout", "eid": eid, "s": stream, "d": proto.b64(data), "o": offset})

    def write_exec_stdin(self, eid: str, data: bytes, close: bool = False) -> None:
        ex = self.execs.get(eid)
        if ex is None or ex.stdin_fd < 0:
            return
        buf = self.exec_stdin.setdefault(eid, bytearray())
        buf += data
        if close and ex.master_fd >= 0:
            buf += b"\x04"  # a terminal has no half-close: end of input is ^D, as for the init
        elif close:
            self.exec_closing.add(eid)
        self.flush_exec_stdin(eid)

    def flush_exec_stdin(self, eid: str) -> None:
        ex = self.execs.get(eid)
        buf = self.exec_stdin.get(eid)
        if ex is None or ex.stdin_fd < 0 or buf is None:
            return
        fd = ex.stdin_fd
        try:
            while buf:
                del buf[: os.write(fd, buf)]
        except BlockingIOError:
            pass
        except OSError:
            buf.clear()
        registered = fd in self.sel.get_map()
        if buf and not registered:
            self.sel.register(fd, selectors.EVENT_WRITE, ("xstdin", eid))
        elif not buf:
            if registered:
                self.sel.unregister(fd)
            if eid in self.exec_closing:
                self.exec_closing.discard(eid)
                os.close(fd)
                ex.stdin_fd = -1

    def check_execs_done(self) -> None:
        """An exec whose output is drained (or whose deadline passed) is reported and forgotten."""
        now = time.monotonic()
        for eid, ex in list(self.execs.items()):
            if ex.exit_code is not None and ex.pipes and self.gate.backlog:
                ex.drain_deadline = now + DRAIN_AFTER_EXIT  # waiting for the agent, not the pipes
            if ex.exit_code is None or (ex.pipes and now < ex.drain_deadline):
                continue
            for fd in list(ex.pipes):
                self.gate.remove(fd)
            if ex.stdin_fd >= 0:
                with contextlib.suppress(KeyError, ValueError):
                    self.sel.unregister(ex.stdin_fd)
            ex.close_fds()
            del self.execs[eid]
            self.gate.forget(eid)
            self.exec_stdin.pop(eid, None)
            self.exec_closing.discard(eid)
            self.done_execs[eid] = ex.exit_code
            while len(self.done_execs) > DONE_EXECS_KEPT:
                del self.done_execs[next(iter(self.done_execs))]
            self.send({"t": "xexit", "eid": eid, "code": ex.exit_code})

    def exec_summary(self) -> dict[str, Any]:
        """For a (re)connecting agent: the execs that run, and exits it was not told about."""
        running = {eid: {"pid": ex.pid, "stdin": ex.stdin_fd >= 0} for eid, ex in self.execs.items()}
        return {"running": running, "done": dict(self.done_execs)}

    # --- stdin -------------------------------------------------------------------------------
    def write_stdin(self, data: bytes) -> None:
        if self.stdin_fd < 0 or self.stdin_closing:
            return
        self.stdin_buf += data
        self.flush_stdin()

    def close_stdin(self) -> None:
        if self.stdin_fd < 0:
            return
        self.stdin_closing = True
        self.flush_stdin()

    def flush_stdin(self) -> None:
        fd = self.stdin_fd
        if fd < 0:
            return
        try:
            while self.stdin_buf:
                n = os.write(fd, self.stdin_buf)
                del self.stdin_buf[:n]
        except BlockingIOError:
            pass
        except OSError:  # the container closed its stdin: what is left has nowhere to go
            self.stdin_buf.clear()
            self.stdin_closing = True
        registered = fd in self.sel.get_map()
        if self.stdin_buf and not registered:
            self.sel.register(fd, selectors.EVENT_WRITE, "stdin")
        elif not self.stdin_buf:
            if registered:
                self.sel.unregister(fd)
            if self.stdin_closing:
                os.close(fd)
                self.stdin_fd = -1

    # --- output and exit ---------------------------------------------------------------------
    def on_pipe(self, fd: int) -> None:
        stream = self.pipes.get(fd)
        if stream is None:  # closed earlier in this same batch of events
            return
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.gate.remove(fd)
            os.close(fd)
            del self.pipes[fd]
            return
        self.log.write(stream, data)
        offset = self.gate.advance("", len(data))
        self.send({"t": "out", "s": stream, "d": proto.b64(data), "o": offset})

    def on_init_exit(self, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        signalled = code < 0
        if signalled:
            code = 128 - code
        # Read before `runc delete` removes the cgroup.
        oom = oom_killed(self.id, bundle=self.bundle)
        if not oom and code == 128 + signal.SIGKILL and memory_failcnt(self.id, bundle=self.bundle):
            oom = True
        self.init_status = status
        self.state.update(exit_code=code, oom_killed=oom, exited_at=rfc3339nano())
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
        if self.stdin_fd >= 0:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self.stdin_fd)
            os.close(self.stdin_fd)
            self.stdin_fd = -1
        if self.master_fd >= 0:
            os.close(self.master_fd)
            self.master_fd = -1
        self.state["status"] = "stopped"
        self.save()
        self.exit_reported = True
        self.send({"t": "eof"})
        self.send({"t": "exit", "state": dict(self.state)})
        if self.state["started"]:
            self.span(
                "container.process",
                int(self.state["process_start_ns"]),
                time.time_ns(),
                str(self.state["process_tp"]),
                **{
                    "container.pid": self.state["pid"],
                    "process.exit_code": self.state["exit_code"],
                    "container.oom_killed": self.state["oom_killed"],
                },
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
        error = self.runc_delete(str(self.state["process_tp"]))
        if error:  # TaskDelete tries again and reports it
            print(f"shim {self.id}: runc delete after exit: {error}", file=sys.stderr, flush=True)

    def runc_delete(self, tp: str) -> str:
        """`runc delete --force`, once; "" or runc's error (a container already gone is none)."""
        if self.runc_deleted:
            return ""
        start = time.time_ns()
        error = ""
        try:
            self.runc.run(["delete", "--force", self.id])
        except RuncError as exc:
            if "does not exist" not in str(exc):
                error = str(exc)
        self.runc_deleted = not error
        self.span("runc delete", start, time.time_ns(), tp, **({"error": error} if error else {}))
        return error

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.log.close()
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.close()
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
        self.drop_conn()


def run_shim(params: dict[str, Any], ready_fd: int) -> int:
    """Body of the shim process (already detached by the zygote). Returns the exit status."""
    shim = Shim(params)
    try:
        shim.setup()
    except Exception as exc:  # noqa: BLE001 - reported to the spawner, then we are gone
        with contextlib.suppress(OSError):
            os.write(ready_fd, proto.encode({"ok": False, "error": str(exc)}))
            os.close(ready_fd)
        with contextlib.suppress(OSError):
            umount(shim.rootfs)
        return 1
    os.write(ready_fd, proto.encode({"ok": True, "pid": os.getpid()}))
    os.close(ready_fd)
    try:
        shim.loop()
    except Exception as exc:  # noqa: BLE001 - leave a trace for the operator
        print(f"shim {shim.id}: fatal: {exc!r}", file=sys.stderr, flush=True)
        return 1
    finally:
        shim.close()
    return 0
