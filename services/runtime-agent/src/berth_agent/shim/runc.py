"""Running runc sub-commands from the shim, and reading its JSON log for errors. Stdlib only."""

from __future__ import annotations

import json
import os
import select
import subprocess

from berth_agent.shim.proto import INVALID, NOT_FOUND, NOT_RUNNING, UNKNOWN, ShimError

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

RUNC_TIMEOUT = 60.0


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


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for proc like proc.wait(timeout), but wake up as soon as it exits.

    With a timeout, Popen.wait polls with sleeps that double up to 50 ms, so it noticed the exit
    of a 35 ms `runc create` only after about 65 ms (bench/README.md); a pidfd is readable the
    moment the process exits. Kills the process on timeout, as subprocess.run does.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel) or already reaped
        pidfd = -1
    if pidfd >= 0:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            ready = poller.poll(timeout * 1000)
        finally:
            os.close(pidfd)
        if not ready:
            proc.kill()
            proc.wait()
            raise subprocess.TimeoutExpired(proc.args, timeout)
        return proc.wait()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


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

    def run(
        self,
        args: list[str],
        *,
        stdin: int | IO[bytes] | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = None,
        stderr: int | IO[bytes] | None = None,
        capture: bool = True,
    ) -> None:
        """Run one runc sub-command; raise RuncError with runc's message on failure."""
        offset = self._log_offset()
        cmd = self._base() + args
        try:
            if capture:
                done = subprocess.run(
                    cmd, stdin=stdin, capture_output=True, timeout=RUNC_TIMEOUT, check=False
                )
                returncode = done.returncode
                stderr_text = done.stderr.decode(errors="replace").strip()
            else:
                proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=stderr)
                wait_exit(proc, RUNC_TIMEOUT)
                returncode = proc.returncode
                stderr_text = ""
        except subprocess.TimeoutExpired as exc:
            raise RuncError(f"runc {args[0]} timed out") from exc
        except OSError as exc:
            raise RuncError(f"runc {args[0]}: {exc}") from exc
        if returncode != 0:
            tail = stderr_text.splitlines()[-1] if stderr_text else ""
            msg = self.last_error(offset) or tail
            raise RuncError(msg or f"runc {args[0]} exited with status {returncode}")
