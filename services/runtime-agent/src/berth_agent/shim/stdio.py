"""Creating the container with runc and its stdio: pipes, or a pty via --console-socket. Stdlib only."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
import termios

from berth_agent.shim.runc import Runc, RuncError

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    # (extra runc flags, (stdin, stdout, stderr)) -> pid of the started process
    Launch = Callable[[list[str], tuple[object, object, object]], int]

READ_SIZE = 64 * 1024


class Created:
    """What `runc create` left us: the init's pid and our ends of its stdio."""

    __slots__ = ("master_fd", "outputs", "pid", "stdin_fd")

    def __init__(
        self, pid: int, outputs: list[tuple[int, int]], stdin_fd: int = -1, master_fd: int = -1
    ) -> None:
        self.pid = pid
        self.outputs = outputs  # (fd, stream) to read, non-blocking
        self.stdin_fd = stdin_fd  # non-blocking write end for the container's stdin, or -1
        self.master_fd = master_fd  # pty master (TTY only), kept for resizing


def _runc_init(
    runc: Runc,
    verb: list[str],
    bundle: str,
    cid: str,
    extra: list[str],
    stdio: tuple[object, object, object],
) -> int:
    """`runc create` or `runc run --detach` with this stdio; the init's pid."""
    pid_file = os.path.join(bundle, "init.pid")
    return runc_detached([*verb, "--bundle", bundle], pid_file, extra, cid, runc, stdio)


def runc_detached(
    args: list[str],
    pid_file: str,
    extra: list[str],
    cid: str,
    runc: Runc,
    stdio: tuple[object, object, object],
) -> int:
    """A runc command that leaves its process running (create, run --detach, exec --detach)
    with this stdio; the process's pid, from its pid file."""
    fds = [x if isinstance(x, int) else x.fileno() for x in stdio]  # type: ignore[attr-defined]
    runc.run([*args, "--pid-file", pid_file, *extra, cid], stdio=(fds[0], fds[1], fds[2]))
    with open(pid_file, encoding="ascii") as f:
        return int(f.read().strip())


def _runc_create(
    runc: Runc, bundle: str, cid: str, extra: list[str], stdio: tuple[object, object, object]
) -> int:
    return _runc_init(runc, ["create"], bundle, cid, extra, stdio)


def run_detached(runc: Runc, bundle: str, cid: str) -> Launch:
    """`runc run --detach`: create and start in one runc process, for a start with nothing to do
    in between (no network to attach). Its errors keep `runc create`'s words, as moby reports a
    failure before the process runs."""

    def launch(extra: list[str], stdio: tuple[object, object, object]) -> int:
        try:
            return _runc_init(runc, ["run", "--detach"], bundle, cid, extra, stdio)
        except RuncError as exc:
            text = str(exc)
            for old, new in (
                ("runc run failed", "runc create failed"),
                ("runc run ", "runc create "),
            ):
                if text.startswith(old):
                    text = new + text[len(old) :]
            raise RuncError(text) from None

    return launch


def create_with_pipes(
    runc: Runc, bundle: str, cid: str, open_stdin: bool, launch: Launch | None = None
) -> Created:
    """runc hands these very pipe ends to the container's init (no terminal: pass-through).

    launch (default: runc create) starts the process with extra runc flags and stdio; runc exec
    uses the same plumbing."""
    launch = launch or (lambda extra, stdio: _runc_create(runc, bundle, cid, extra, stdio))
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    stdin_r, stdin_w = os.pipe() if open_stdin else (-1, -1)
    try:
        with open(os.devnull, "rb") as devnull:
            pid = launch([], (stdin_r if stdin_r >= 0 else devnull, out_w, err_w))
    except RuncError as exc:
        os.close(out_w)
        os.close(err_w)
        detail = str(exc)
        if detail.startswith("runc create exited"):
            # No JSON log line: runc printed its error on what would be the container's stderr.
            with contextlib.suppress(OSError):
                os.set_blocking(err_r, False)
                lines = os.read(err_r, READ_SIZE).decode(errors="replace").strip().splitlines()
                if lines:
                    detail = lines[-1]
        for fd in (out_r, err_r, stdin_r, stdin_w):
            if fd >= 0:
                os.close(fd)
        raise RuncError(detail) from None
    os.close(out_w)
    os.close(err_w)
    if stdin_r >= 0:
        os.close(stdin_r)
        os.set_blocking(stdin_w, False)
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
    return Created(pid=pid, outputs=[(out_r, 1), (err_r, 2)], stdin_fd=stdin_w)


def create_with_tty(
    runc: Runc,
    bundle: str,
    cid: str,
    console_path: str,
    open_stdin: bool,
    launch: Launch | None = None,
) -> Created:
    """runc sends the pty master over --console-socket; it carries output (stream 1) and input."""
    launch = launch or (lambda extra, stdio: _runc_create(runc, bundle, cid, extra, stdio))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(console_path)
    console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        console.bind(console_path)
        console.listen(1)
        with open(os.devnull, "r+b") as devnull:
            pid = launch(["--console-socket", console_path], (devnull,) * 3)
        # runc connected and sent the fd before it exited: the connection waits in the backlog.
        console.settimeout(5.0)
        conn, _ = console.accept()
        with conn:
            conn.settimeout(5.0)
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        if not fds:
            raise RuncError("runc did not send the console")
    except OSError as exc:
        raise RuncError(f"console socket: {exc}") from exc
    finally:
        console.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(console_path)
    master = fds[0]
    out = os.dup(master)
    os.set_blocking(out, False)
    stdin_fd = -1
    if open_stdin:
        stdin_fd = os.dup(master)
        os.set_blocking(stdin_fd, False)
    return Created(pid=pid, outputs=[(out, 1)], stdin_fd=stdin_fd, master_fd=master)


def set_winsize(master_fd: int, height: int, width: int) -> None:
    fcntl.ioctl(master_fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def read_output(fd: int) -> bytes | None:
    """One read of a process's output: None when nothing is ready, b"" at its end (EOF, or EIO
    from a pty whose other side is gone)."""
    try:
        return os.read(fd, READ_SIZE)
    except BlockingIOError:
        return None
    except OSError:
        return b""
