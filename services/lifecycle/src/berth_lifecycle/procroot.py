"""The root of a running container's process, opened only if it is that container's rootfs.

`docker cp` into a running container goes through `/proc/<pid>/root`. A pid from the request
alone would let any caller on the bus chroot lifecycle into any process on the host (the
supervisor's own root, where root-only files are). So the pid must show that container's
rootfs: the overlay whose upperdir is the container's snapshot (or, for an image without
layers, the bind of that directory). The pid's start time is read before the root is opened
and after it was checked: a pid reused in between (the container gone, another process there)
has another start time and is refused.

Used by archive_child before its chroot, with the standard library and berth_common only (nothing else is
imported there).
"""

from __future__ import annotations

import os
from typing import Any

from berth_common.mounts import mountinfo

EXIT_NOT_THAT_CONTAINER = 5


class NotThatContainer(Exception):
    """The pid is gone or its root is not the container's rootfs."""


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        raise NotThatContainer(f"process {pid} does not exist") from None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return data[data.rindex(b")") + 2 :].split()[19].decode()


def _root_mount(pid: int) -> tuple[str, list[str]]:
    """fstype and super options of the mount at `/` as the process sees it (the top one)."""
    try:
        mounts = mountinfo(pid)
    except OSError:
        raise NotThatContainer(f"process {pid} does not exist") from None
    found = [(fstype, options) for point, fstype, options in mounts if point == "/"]
    if not found:
        raise NotThatContainer(f"process {pid} has no root mount")
    return found[-1]


def _check(pid: int, fd: int, rootfs: dict[str, Any]) -> None:
    if rootfs["type"] == "overlay":
        upper = next((o for o in rootfs["options"] if o.startswith("upperdir=")), "")
        fstype, options = _root_mount(pid)
        if not upper or fstype != "overlay" or upper not in options:
            raise NotThatContainer(f"the root of process {pid} is not the container's rootfs")
        return
    # A bind of the snapshot directory: the same inode on the same device.
    want = os.stat(rootfs["source"])
    have = os.fstat(fd)
    if (want.st_dev, want.st_ino) != (have.st_dev, have.st_ino):
        raise NotThatContainer(f"the root of process {pid} is not the container's rootfs")


def open_container_root(pid: int, rootfs: dict[str, Any]) -> int:
    """An O_PATH fd of `/proc/<pid>/root` once it is known to be `rootfs` (a snapshot mount).

    Raises NotThatContainer otherwise; the caller closes the fd.
    """
    if pid <= 0:
        raise NotThatContainer(f"invalid pid {pid}")
    before = _start_time(pid)
    try:
        fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise NotThatContainer(f"process {pid} does not exist") from None
    try:
        _check(pid, fd, rootfs)
        if _start_time(pid) != before:
            raise NotThatContainer(f"process {pid} changed while it was checked")
    except BaseException:
        os.close(fd)
        raise
    return fd
