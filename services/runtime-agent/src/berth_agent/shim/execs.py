"""docker exec inside the shim: `runc exec --detach` with pipes or a pty. Stdlib only.

The exec'd process is re-parented to the shim (a subreaper) once runc exits, so the shim reaps it
like the init. Each exec is named by its exec id; its output and input are kept apart from the
init's. Exec output is not logged (as in Docker): it goes to whoever started the exec.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import time

from berth_agent.shim import proto
from berth_agent.shim.gate import OutputGate
from berth_agent.shim.runc import Runc
from berth_agent.shim.stdin import StdinWriter
from berth_agent.shim.stdio import (
    Created,
    create_with_pipes,
    create_with_tty,
    runc_detached,
    set_winsize,
)

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from berth_agent.shim.frames import ExecSummary, RunningExec

DRAIN_AFTER_EXIT = 2.0  # seconds to wait for the output pipes to close after the process exited
# Exec exits no agent has acknowledged yet (it may have been down when they happened): the next
# agent learns them from the hello frame. Bounded: a healthcheck runs an exec every interval.
DONE_EXECS_KEPT = 256


class Exec:
    """One exec process: its fds, and its exit once reaped."""

    __slots__ = ("drain_deadline", "eid", "exit_code", "master_fd", "pid", "pipes", "stdin")

    def __init__(self, eid: str, created: Created, sel: selectors.BaseSelector) -> None:
        self.eid = eid
        self.pid = created.pid
        self.pipes = {fd: stream for fd, stream in created.outputs}
        self.stdin = StdinWriter(sel, created.stdin_fd)
        self.master_fd = created.master_fd
        self.exit_code: int | None = None
        self.drain_deadline = 0.0

    def close_fds(self) -> None:
        self.stdin.discard()
        for fd in (*self.pipes, self.master_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.pipes.clear()
        self.master_fd = -1


def start_exec(
    runc: Runc,
    bundle: str,
    cid: str,
    eid: str,
    process: dict[str, Any],
    console_path: str,
    open_stdin: bool,
) -> Created:
    """Write the process spec and run it in the container; the spec and pid files go away after."""
    stem = os.path.join(bundle, f"exec-{eid[:16]}")
    process_path, pid_path = stem + ".json", stem + ".pid"
    with open(process_path, "w", encoding="utf-8") as f:
        json.dump(process, f)

    def launch(extra: list[str], stdio: tuple[object, object, object]) -> int:
        args = ["exec", "--detach", "--process", process_path]
        return runc_detached(args, pid_path, extra, cid, runc, stdio)

    try:
        if process.get("terminal"):
            return create_with_tty(runc, bundle, cid, console_path, open_stdin, launch=launch)
        return create_with_pipes(runc, bundle, cid, open_stdin, launch=launch)
    finally:
        for path in (process_path, pid_path):
            with contextlib.suppress(OSError):
                os.unlink(path)


class ExecTable:
    """The container's running execs, and the exits no agent has acknowledged yet."""

    def __init__(
        self,
        cid: str,
        bundle: str,
        console_stem: str,
        runc: Runc,
        sel: selectors.BaseSelector,
        gate: OutputGate,
        send: Callable[[Mapping[str, Any]], None],
    ) -> None:
        self._cid = cid
        self._bundle = bundle
        self._console_stem = console_stem
        self._runc = runc
        self._sel = sel
        self._gate = gate
        self._send = send
        self.running: dict[str, Exec] = {}
        self.done: dict[str, int] = {}  # exec id -> exit code, until an agent acks it

    def start(self, frame: dict[str, Any]) -> Exec:
        """runc exec --detach the frame's process (the caller checked the container runs)."""
        eid = str(frame.get("eid", ""))
        if not eid or eid in self.running:
            raise proto.ShimError(proto.ALREADY_EXISTS, f"exec {eid!r} already exists")
        created = start_exec(
            self._runc,
            self._bundle,
            self._cid,
            eid,
            dict(frame.get("proc") or {}),
            f"{self._console_stem}.x{eid[:8]}",
            bool(frame.get("stdin")),
        )
        ex = Exec(eid, created, self._sel)
        self.running[eid] = ex
        if ex.master_fd >= 0 and frame.get("h") and frame.get("w"):
            set_winsize(ex.master_fd, int(frame["h"]), int(frame["w"]))
        for fd in ex.pipes:
            self._gate.add(fd, eid, lambda mask, fd=fd, ex=ex: self._on_pipe(ex, fd))
        return ex

    def resize(self, eid: str, height: int, width: int) -> dict[str, Any]:
        ex = self.running.get(eid)
        if ex is not None and ex.master_fd >= 0:
            set_winsize(ex.master_fd, height, width)
        return {}

    def write_stdin(self, eid: str, data: bytes) -> None:
        ex = self.running.get(eid)
        if ex is not None:
            ex.stdin.write(data)

    def close_stdin(self, eid: str) -> None:
        ex = self.running.get(eid)
        if ex is None:
            return
        if ex.master_fd >= 0:
            ex.stdin.write(b"\x04")  # a terminal has no half-close: end of input is ^D
        else:
            ex.stdin.close()

    def _on_pipe(self, ex: Exec, fd: int) -> None:
        chunk = self._gate.read(ex.pipes, fd)
        if chunk is None:
            return
        stream, data = chunk
        offset = self._gate.advance(ex.eid, len(data))
        self._send({"t": "xout", "eid": ex.eid, "s": stream, "d": proto.b64(data), "o": offset})

    def reaped(self, pid: int, status: int) -> None:
        for ex in self.running.values():
            if ex.pid == pid and ex.exit_code is None:
                code = os.waitstatus_to_exitcode(status)
                ex.exit_code = 128 - code if code < 0 else code
                ex.drain_deadline = time.monotonic() + DRAIN_AFTER_EXIT
                self._gate.exited(ex.eid)

    def next_deadline(self, timeout: float, now: float) -> float:
        for ex in self.running.values():
            if ex.exit_code is not None:
                timeout = max(0.0, min(timeout, ex.drain_deadline - now))
        return timeout

    def report_done(self) -> None:
        """An exec whose output is drained (or whose deadline passed) is reported and forgotten."""
        now = time.monotonic()
        for eid, ex in list(self.running.items()):
            if ex.exit_code is not None and ex.pipes and self._gate.backlog:
                ex.drain_deadline = now + DRAIN_AFTER_EXIT  # waiting for the agent, not the pipes
            if ex.exit_code is None or (ex.pipes and now < ex.drain_deadline):
                continue
            for fd in list(ex.pipes):
                self._gate.remove(fd)
            ex.close_fds()
            del self.running[eid]
            self._gate.forget(eid)
            self.done[eid] = ex.exit_code
            while len(self.done) > DONE_EXECS_KEPT:
                del self.done[next(iter(self.done))]
            self._send({"t": "xexit", "eid": eid, "code": ex.exit_code})

    def acked(self, eid: str) -> None:
        self.done.pop(eid, None)

    def summary(self) -> ExecSummary:
        """For a (re)connecting agent: the execs that run, and exits it was not told about."""
        running: dict[str, RunningExec] = {
            eid: {"pid": ex.pid, "stdin": ex.stdin.fd >= 0} for eid, ex in self.running.items()
        }
        return {"running": running, "done": dict(self.done)}
