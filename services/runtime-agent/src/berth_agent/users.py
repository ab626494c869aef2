"""Resolving a Docker `User` string against the container's own /etc/passwd and /etc/group.

The files are opened with openat2(RESOLVE_IN_ROOT) so symlinks (and `..`) in the image resolve
inside the rootfs, never on the host. An image decides what is at /etc/passwd: the path is first
opened with O_PATH (which opens nothing), and only a regular file is then read, non-blocking and
bounded; a FIFO there would otherwise hold an agent thread forever, a device would be read.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from dataclasses import dataclass, field

from berth_contracts.errors import InternalError, InvalidParameter

_SYS_OPENAT2 = 437  # same number on x86_64 and aarch64
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_MAX_FILE = 4 * 1024 * 1024


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_EAGAIN_RETRIES = 64


def read_in_root(root: str, path: str) -> bytes | None:
    """Contents of `path` resolved inside `root`, or None if it does not exist there."""
    dirfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        how = _OpenHow(os.O_PATH | os.O_CLOEXEC, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        for _ in range(_EAGAIN_RETRIES):
            fd = _libc.syscall(
                _SYS_OPENAT2, dirfd, path.lstrip("/").encode(), ctypes.byref(how), ctypes.sizeof(how)
            )
            # EAGAIN: a rename or mount anywhere on the host raced a `..` of this lookup, and
            # the kernel could not prove it stayed inside the root; openat2(2) says to retry.
            if fd >= 0 or ctypes.get_errno() != errno.EAGAIN:
                break
        if fd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV):
                return None
            raise OSError(err, f"open {path} in rootfs: {os.strerror(err)}")
        try:
            return _read_regular(fd, path)
        finally:
            os.close(fd)
    finally:
        os.close(dirfd)


def _read_regular(path_fd: int, path: str) -> bytes:
    kind = stat.S_IFMT(os.fstat(path_fd).st_mode)
    if kind != stat.S_IFREG:
        raise InvalidParameter(
            f"unable to read {path} in the container's rootfs: not a regular file "
            f"({_KINDS.get(kind, 'special file')})"
        )
    # Reopen the very inode the O_PATH fd holds (no second lookup in the image).
    fd = os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, _MAX_FILE + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_FILE:
                raise InvalidParameter(
                    f"unable to read {path} in the container's rootfs: larger than "
                    f"{_MAX_FILE // (1024 * 1024)} MiB"
                )
        return b"".join(chunks)
    finally:
        os.close(fd)


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"
    name: str = ""


def _entries(data: bytes | None, fields: int) -> list[list[str]]:
    if data is None:
        return []
    out = []
    for raw in data.decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            out.append(parts)
    return out


def resolve_user(rootfs: str, user: str) -> ExecUser:
    """Docker's (libcontainer's GetExecUser) rules: "", "uid", "name", "x:gid", "x:group"."""
    passwd = _entries(read_in_root(rootfs, "/etc/passwd"), 7)
    groups = _entries(read_in_root(rootfs, "/etc/group"), 4)
    user_part, _, group_part = (user or "0").partition(":")
    if not user_part:
        user_part = "0"

    name = ""
    home = "/"
    gid = 0
    entry = next((p for p in passwd if p[0] == user_part), None)
    if entry is None and user_part.isdigit():
        entry = next((p for p in passwd if p[2] == user_part), None)
    if entry is not None:
        name, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5] or "/"
    elif user_part.isdigit():
        uid = int(user_part)
    else:
        raise InvalidParameter(
            f"unable to find user {user_part}: no matching entries in passwd file"
        )

    if group_part:
        gentry = next((g for g in groups if g[0] == group_part), None)
        if gentry is not None:
            gid = int(gentry[2])
        elif group_part.isdigit():
            gid = int(group_part)
        else:
            raise InvalidParameter(
                f"unable to find group {group_part}: no matching entries in group file"
            )

    additional: list[int] = []
    if name and not group_part:
        for g in groups:
            members = [m.strip() for m in g[3].split(",") if m.strip()]
            if name in members and g[2].isdigit():
                gid_extra = int(g[2])
                if gid_extra not in additional:
                    additional.append(gid_extra)
    return ExecUser(uid=uid, gid=gid, additional_gids=additional, home=home, name=name)


def resolve_groups(rootfs: str, groups: list[str]) -> list[int]:
    """libcontainer's GetAdditionalGroupsPath (`--group-add`): names or gids in the rootfs's
    /etc/group; a number not in it is used as it is, an unknown name refused."""
    entries = _entries(read_in_root(rootfs, "/etc/group"), 4)
    gids: list[int] = []
    for group in groups:
        entry = next((g for g in entries if group in (g[0], g[2])), None)
        if entry is not None and entry[2].isdigit():
            gids.append(int(entry[2]))
        elif group.isdigit():
            gids.append(int(group))
        else:
            raise InternalError(
                f"Unable to find group {group}: no matching entries in group file"
            )
    return gids
