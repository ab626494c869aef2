"""The shim process: how it becomes one (a named subreaper that outlives pressure and signals
meant for its session) and its life from set-up to exit. Stdlib only.

The zygote forks it and calls run_shim; `ps` then shows `berth-shim -id <container id>`, as
containerd's shims show `containerd-shim-runc-v2 -namespace moby -id <id>`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

from berth_common.mounts import libc, umount

from berth_agent.shim import proto
from berth_agent.shim.container import Shim

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PR_SET_CHILD_SUBREAPER = 36
TITLE = "berth-shim"
# The zygote's command line ends with this much room, which each shim overwrites with its title.
TITLE_ROOM = " " * 96


def set_title(container_id: str) -> None:
    """What ps shows: comm `berth-shim`, and the command line `berth-shim -id <id>`, written
    over the command line the shim inherited from the zygote (as setproctitle does; the
    kernel's PR_SET_MM would need CAP_SYS_RESOURCE, which a root in a container may lack)."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(TITLE)
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        arg_start, arg_end = int(fields[45]), int(fields[46])  # stat fields 48 and 49
    except (OSError, ValueError, IndexError):
        return
    title = f"{TITLE}\0-id\0{container_id}\0".encode()
    room = arg_end - arg_start
    if 0 < len(title) <= room:
        ctypes.memmove(arg_start, title.ljust(room, b"\0"), room)


def become_shim(container_id: str) -> None:
    set_title(container_id)
    libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # the container's init is re-parented to us
    # The shim must outlive memory pressure inside its own container.
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
        f.write("-999")
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def run_shim(params: dict[str, Any], ready_fd: int) -> int:
    """Body of the shim process (already detached by the zygote). Returns the exit status."""
    shim = Shim(params)
    try:
        become_shim(shim.id)
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
