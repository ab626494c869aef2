"""docker exec inside the shim: `runc exec --detach` with pipes or a pty. Stdlib only.

The exec'd process is re-parented to the shim (a subreaper) once runc exits, so the shim reaps it
like the init. Each exec is named by its exec id; its output and input are kept apart from the
init's.
"""

from __future__ import annotations

import contextlib
import json
import os

from berth_agent.shim_runc import Runc
from berth_agent.shim_stdio import Created, create_with_pipes, create_with_tty

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Exec:
    """One exec process: its fds, and its exit once reaped."""

    __slots__ = ("drain_deadline", "eid", "exit_code", "master_fd", "pid", "pipes", "stdin_fd")

    def __init__(self, eid: str, created: Created) -> None:
        self.eid = eid
        self.pid = created.pid
        self.pipes = {fd: stream for fd, stream in created.outputs}
        self.stdin_fd = created.stdin_fd
        self.master_fd = created.master_fd
        self.exit_code: int | None = None
        self.drain_deadline = 0.0

    def close_fds(self) -> None:
        for fd in (*self.pipes, self.stdin_fd, self.master_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.pipes.clear()
        self.stdin_fd = self.master_fd = -1


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
        runc.run(
            ["exec", "--detach", "--pid-file", pid_path, "--process", process_path, *extra, cid],
            stdin=stdio[0],  # type: ignore[arg-type]
            stdout=stdio[1],  # type: ignore[arg-type]
            stderr=stdio[2],  # type: ignore[arg-type]
            capture=False,
        )
        with open(pid_path, encoding="ascii") as f:
            return int(f.read().strip())

    try:
        if process.get("terminal"):
            return create_with_tty(runc, bundle, cid, console_path, open_stdin, launch=launch)
        return create_with_pipes(runc, bundle, cid, open_stdin, launch=launch)
    finally:
        for path in (process_path, pid_path):
            with contextlib.suppress(OSError):
                os.unlink(path)
