"""`--network/--pid/--ipc container:<id>` and the IPC modes' /dev/shm: what a new task takes
from the running tasks of this node (their /proc/<pid>/ns paths, a shareable donor's shm)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from berth_contracts.agent import TaskSpec
from berth_contracts.errors import Conflict, NotFound

from berth_agent.bundle import SHM_DIR, SHM_OPTIONS
from berth_agent.shim.mount import mount_oci
from berth_agent.task import Task

_PROC_NS = {"network": "net", "pid": "pid", "ipc": "ipc"}


def donor(tasks: Mapping[str, Task], ref: str, ns: str) -> Task:
    matches = [t for cid, t in tasks.items() if ref and cid.startswith(ref)]
    if len(matches) != 1:
        raise NotFound(f"No such container: {ref}")
    other = matches[0]
    # A paused container is still running for dockerd (State.Running stays true).
    if not other.running or not other.state["pid"]:
        if ns == "network":
            raise Conflict(f"cannot join network of a non running container: {other.id}")
        raise Conflict(f"container {other.id} is not running")
    return other


def joined_namespaces(
    tasks: Mapping[str, Task], spec: TaskSpec, netns_dir: Path | None = None
) -> dict[str, str]:
    """Namespace type -> the namespace file to join for each `container:` mode: the donor's
    bound netns under `netns_dir` when it has networks (it outlives the process that made it),
    else /proc/<donor's init pid>/ns/<type>."""
    joined: dict[str, str] = {}
    for ns, mode in (
        ("network", spec.network_mode),
        ("pid", spec.pid_mode),
        ("ipc", spec.ipc_mode),
    ):
        if mode.startswith("container:"):
            other = donor(tasks, mode.partition(":")[2], ns)
            bound = netns_dir / other.id if netns_dir is not None else None
            if ns == "network" and bound is not None and os.path.ismount(bound):
                joined[ns] = str(bound)
            else:
                joined[ns] = f"/proc/{other.state['pid']}/ns/{_PROC_NS[ns]}"
    return joined


def network_donor_bundle(tasks: Mapping[str, Task], spec: TaskSpec) -> Path | None:
    """`--network container:<id>`: the donor's bundle, whose /etc/hostname, hosts and
    resolv.conf the joiner bind-mounts (dockerd shares them)."""
    if not spec.network_mode.startswith("container:"):
        return None
    return donor(tasks, spec.network_mode.partition(":")[2], "network").bundle


def shm_source(tasks: Mapping[str, Task], spec: TaskSpec, bundle: Path) -> str:
    """The host directory bind-mounted at /dev/shm: the host's (`host`), a tmpfs of the
    bundle's (`shareable`, as dockerd's container shm dir) or the IPC donor's; "" for a
    private tmpfs. Blocking (mount): run in a thread."""
    if spec.ipc_mode == "host":
        return "/dev/shm"
    if spec.ipc_mode == "shareable":
        shm = bundle / SHM_DIR
        shm.mkdir(mode=0o700, exist_ok=True)
        mount_oci("tmpfs", "shm", str(shm), list(SHM_OPTIONS))
        return str(shm)
    if spec.ipc_mode.startswith("container:"):
        other = donor(tasks, spec.ipc_mode.partition(":")[2], "ipc")
        return str(other.bundle / SHM_DIR)
    return ""
