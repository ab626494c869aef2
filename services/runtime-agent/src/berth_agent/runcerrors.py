"""runc's failures in dockerd's words, written once for berth.

The shim classifies a runc failure (its error kind, shim/runc.py); this module words it as
dockerd 20.10+ reports it and picks the Docker error class from the kind, never from the text.
The engine passes these messages through as they are; it derives only `docker run`'s exit code
from them (127 not found, 126 not executable), as moby's setExitCodeFromError does.
"""

from __future__ import annotations

from berth_contracts.errors import BerthError, Conflict, InternalError, InvalidParameter

from berth_agent.shim import proto

CREATE_PREFIX = (
    "failed to create task for container: failed to create shim task: OCI runtime create failed: "
)
# What runc prints before an error of the container's process set-up (the user, the network):
# berth does that set-up in the agent, and words its failures as runc would.
PROCESS_PREFIX = "runc create failed: unable to start container process: "
# Failures dockerd reports in its own words, not through runc.
DAEMON_WORDS = ("Unable to find group", "error gathering device information")


def create_failed(exc: proto.ShimError) -> BerthError:
    message = f"{CREATE_PREFIX}{exc}: unknown"
    return InvalidParameter(message) if exc.kind == proto.INVALID else InternalError(message)


def _refused(exc: proto.ShimError, not_running: str, failed: str) -> BerthError:
    return Conflict(not_running) if exc.kind == proto.NOT_RUNNING else InternalError(failed)


def start_failed(exc: proto.ShimError, cid: str) -> BerthError:
    # not running: not created, or already started
    return _refused(exc, f"{exc}: {cid}", f"OCI runtime start failed: {exc}: unknown")


def kill_failed(exc: proto.ShimError, cid: str) -> BerthError:
    return _refused(
        exc, f"container {cid} is not running", f"OCI runtime kill failed: {exc}: unknown"
    )


def exec_failed(exc: proto.ShimError, cid: str) -> BerthError:
    failed = f"OCI runtime exec failed: exec failed: {exc}: unknown"
    return _refused(exc, f"Container {cid} is not running", failed)


def pause_failed(exc: proto.ShimError, cid: str) -> BerthError:
    return _refused(exc, f"Container {cid} is not running", f"Cannot pause container {cid}: {exc}")


def resize_failed(exc: proto.ShimError) -> BerthError:
    return InternalError(f"resize failed: {exc}")


def as_process_setup_error(exc: BerthError) -> BerthError:
    """A failure of the agent's own part of creating the process, worded as runc words it (in
    dockerd, runc resolves the user and joins the namespaces): `docker run` exits 127 for a
    missing executable and says the same words on both engines. Already worded failures,
    dockerd's own words and errors that are not about the process pass through."""
    text = exc.message
    if exc.kind not in ("internal", "invalid") or text.startswith(DAEMON_WORDS):
        return exc
    if text.startswith(CREATE_PREFIX) or "OCI runtime" in text:
        return exc
    text = f"{CREATE_PREFIX}{PROCESS_PREFIX}{text}: unknown"
    missing = "executable file not found" in text or "no such file or directory" in text
    if missing or exc.kind == "invalid":
        return InvalidParameter(text)
    return InternalError(text)
