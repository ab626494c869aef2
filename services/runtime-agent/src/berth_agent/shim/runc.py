"""Running runc sub-commands from the shim, and reading its JSON log for errors. Stdlib only."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time

from berth_agent.shim.proto import INVALID, NOT_FOUND, NOT_RUNNING, UNKNOWN, ShimError

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

RUNC_TIMEOUT = 60.0
RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
MAX_FD = 65536  # closed in the fork before runc starts: runc inherits only its stdio


class RuncError(ShimError):
    """A runc sub-command failed: runc's own message, and its kind read from it here, once."""

    def __init__(self, message: str) -> None:
        super().__init__(runc_error_kind(message), message)


def runc_error_kind(message: str) -> str:
    """What a runc message means, as containerd's runc shim classifies them (errdefs)."""
    lowered = message.lower()
    if "does not exist" in lowered:
        return NOT_FOUND
    if "not running" in lowered or "container is stopped" in lowered:
        return NOT_RUNNING
    if any(
        words in lowered
        for words in ("executable file not found", "no such file or directory", "permission denied")
    ):
        return INVALID  # dockerd's 400, and exit 127/126 for `docker run`
    return UNKNOWN


def wait_pid(pid: int, timeout: float) -> int:
    """Wait for child pid to exit and return its wait status; kill it after timeout (RuncError).

    A pidfd is readable the moment the process exits (Popen.wait(timeout) polls with sleeps
    that double up to 50 ms: it noticed a 35 ms `runc create` only after about 65 ms,
    bench/README.md)."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # no pidfd (old kernel): block, the timeout is runc's own
        return os.waitpid(pid, 0)[1]
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        exited = poller.poll(timeout * 1000)
    finally:
        os.close(pidfd)
    if not exited:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    status = os.waitpid(pid, 0)[1]
    if not exited:
        raise RuncError("timed out")
    return status


def in_child(work: Callable[[int], None]) -> None:
    """Run work(report fd) in a fork of this process and wait for it; its RuncError is raised here.

    The fork reports through a pipe: nothing when work returned, else the error's message.
    Children work() starts are the fork's to wait for (runc); those they leave running (the
    container's init, an exec's process) are re-parented to the shim, a subreaper, when runc
    exits."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the fork: never returns into the shim's loop
        status = 0
        try:
            os.close(read_end)
            signal.set_wakeup_fd(-1)  # runc's SIGCHLD is this process's, not the shim's loop's
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                work(write_end)
                report = b""
            except RuncError as exc:
                report = (str(exc) or "runc failed").encode(errors="replace")
            view = memoryview(report)
            while view:
                view = view[os.write(write_end, view) :]
        except BaseException:  # noqa: BLE001 - whatever it was, the shim hears "failed"
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        report, complete = _read_all(read_end, RUNC_TIMEOUT + 5.0)
    finally:
        os.close(read_end)
    if not complete:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if not complete:
        raise RuncError("runc timed out")
    if report:
        raise RuncError(report.decode(errors="replace"))
    if status != 0:
        raise RuncError(f"runc helper exited with status {os.waitstatus_to_exitcode(status)}")


def _spawn(cmd: list[str]) -> int:
    """Start cmd as a child with our fds 0-2 (fork and exec: glibc's posix_spawn would leave its
    internal signals 32 and 33 ignored in runc, and so in the container); OSError if the exec
    failed."""
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)  # closed by a successful exec
    pid = os.fork()
    if pid == 0:
        try:
            # Back to their defaults, as subprocess's restore_signals: runc would pass the
            # shim's "ignore" on to the container's process.
            for sig in RESTORED_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            os.execvp(cmd[0], cmd)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, then gone
            code, text = (exc.errno or 0, exc.strerror) if isinstance(exc, OSError) else (0, exc)
            with contextlib.suppress(OSError):
                os.write(errors_w, f"{code}:{text}".encode())
        finally:
            os._exit(127)
    os.close(errors_w)
    try:
        failure = _read_all(errors_r, RUNC_TIMEOUT)[0]
    finally:
        os.close(errors_r)
    if failure:
        os.waitpid(pid, 0)
        number, _, message = failure.decode(errors="replace").partition(":")
        raise OSError(int(number) if number.isdigit() else 0, message, cmd[0])
    return pid


def _read_all(fd: int, timeout: float) -> tuple[bytes, bool]:
    """Everything written to fd until its last writer closes it, and whether that happened
    before the timeout."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            return b"".join(chunks), False
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


class Runc:
    def __init__(self, binary: str, root: str, log_path: str) -> None:
        self.binary = binary
        self.root = root
        self.log_path = log_path

    def _base(self) -> list[str]:
        return [self.binary, "--root", self.root, "--log", self.log_path, "--log-format", "json"]

    def _log_offset(self) -> int:
        try:
            return os.stat(self.log_path).st_size
        except OSError:
            return 0

    def last_error(self, offset: int) -> str:
        """The last error-level message runc logged after offset, in runc's own words."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                lines = f.read().splitlines()
        except OSError:
            return ""
        msg = ""
        for raw in lines:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                msg = str(entry.get("msg", ""))
        return msg

    def run(self, args: list[str], *, stdio: tuple[int, int, int] | None = None) -> None:
        """Run one runc sub-command; raise RuncError with runc's message on failure. stdio:
        the fds runc gets as its stdin, stdout and stderr (default: /dev/null in, its output
        captured for the error message).

        It runs in a short-lived fork of the shim (in_child): in a fork of the zygote, every
        page of objects and code that starting a process and reading its errors touches is
        copied for good; the fork takes those copies away when it exits, so the shim, which
        idles for the container's lifetime, keeps only its own. And it needs no subprocess,
        whose threading import alone costs every fork of the zygote 0.4 MiB (bench/README.md,
        item 4b)."""
        in_child(lambda report_fd: self._run(args, stdio, report_fd))

    def _run(self, args: list[str], stdio: tuple[int, int, int] | None, keep: int) -> None:
        """In the fork: runc with this stdio on fds 0-2 and, of ours, nothing else open but
        keep (the fork's report); then runc's error, if it failed."""
        offset = self._log_offset()
        capture_r = -1
        if stdio is None:
            capture_r, capture_w = os.pipe()
            stdio = (os.open(os.devnull, os.O_RDONLY), capture_w, capture_w)
        copies = [os.dup(fd) for fd in stdio]  # fresh fds: no source is another's target
        for target, fd in enumerate(copies):
            os.dup2(fd, target)
        kept = sorted({fd for fd in (2, keep, capture_r) if fd >= 2})
        for low, high in zip(kept, [*kept[1:], MAX_FD], strict=True):
            os.closerange(low + 1, high)  # a received pty master would reach the container
        try:
            pid = _spawn([*self._base(), *args])
        except OSError as exc:
            raise RuncError(f"runc {args[0]}: {exc}") from exc
        finally:
            for fd in range(3):
                os.close(fd)
        output = _read_all(capture_r, RUNC_TIMEOUT)[0] if capture_r >= 0 else b""
        try:
            status = wait_pid(pid, RUNC_TIMEOUT)
        except RuncError:
            raise RuncError(f"runc {args[0]} timed out") from None
        returncode = os.waitstatus_to_exitcode(status)
        if returncode != 0:
            lines = output.decode(errors="replace").strip().splitlines()
            msg = self.last_error(offset) or (lines[-1] if lines else "")
            raise RuncError(msg or f"runc {args[0]} exited with status {returncode}")
