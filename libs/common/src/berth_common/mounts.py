"""mount(2), umount2(2) and unshare(2) through ctypes, and /proc/<pid>/mountinfo. Stdlib only
(no dataclasses, no typing at run time: the agent's shims import this module)."""

from __future__ import annotations

import ctypes
import os

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2
CLONE_NEWNS = 0x00020000

_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        # The interpreter is linked against libc: its symbols are already in the process.
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None, what: str = "") -> None:
    """mount(2); OSError "<what>: <strerror>" (default what: "mount <source> on <target> (<fstype>)")."""
    rc = libc().mount(
        source.encode() if source is not None else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    _check(rc, what or f"mount {source} on {target} ({fstype or 'bind'})")


def umount(target: str, detach: bool = True) -> None:
    _check(libc().umount2(target.encode(), MNT_DETACH if detach else 0), f"umount {target}")


def private_mount_namespace() -> None:
    """This process in a mount namespace of its own, whose mounts propagate nowhere: what it
    mounts vanishes with it."""
    _check(libc().unshare(CLONE_NEWNS), "unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE, None, "make / private")


def unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash are written as \\ooo octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mountinfo(pid: int | str = "self") -> list[tuple[str, str, list[str]]]:
    """(mount point, fstype, super options) of each mount `pid` sees, in mount order (the last
    one at a path is on top). OSError when the process is gone."""
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    found = []
    for line in lines:
        fields, _, tail = line.partition(" - ")
        parts = fields.split()
        rest = tail.split()
        if len(parts) >= 5 and len(rest) >= 3:
            found.append((unescape(parts[4]), rest[0], rest[2].split(",")))
    return found


def is_mountpoint(path: str) -> bool:
    try:
        return any(point == path for point, _, _ in mountinfo())
    except OSError:
        return False
