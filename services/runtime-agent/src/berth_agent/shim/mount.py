"""OCI-style mount options as mount(2) calls (berth_common.mounts). Stdlib only."""

from __future__ import annotations

from berth_common.mounts import (
    MS_BIND,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_STRICTATIME,
    mount,
)

_FLAGS: dict[str, tuple[bool, int]] = {
    # option: (clears the flag?, flag)
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID),
    "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV),
    "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC),
    "exec": (True, MS_NOEXEC),
    "noatime": (False, MS_NOATIME),
    "nodiratime": (False, MS_NODIRATIME),
    "relatime": (False, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME),
    "bind": (False, MS_BIND),
    "rbind": (False, MS_BIND | MS_REC),
}


def parse_options(options: list[str]) -> tuple[int, str]:
    """Split OCI mount options into mount(2) flags and the filesystem's data string."""
    flags = 0
    data: list[str] = []
    for opt in options:
        known = _FLAGS.get(opt)
        if known is None:
            data.append(opt)
        elif known[0]:
            flags &= ~known[1]
        else:
            flags |= known[1]
    return flags, ",".join(data)


def mount_oci(mtype: str, source: str, target: str, options: list[str]) -> None:
    """Mount like `mount -t type -o options source target`; bind mounts are remounted for ro etc."""
    flags, data = parse_options(options)
    if flags & MS_BIND or mtype == "bind":
        rec = flags & MS_REC
        mount(source, target, "", MS_BIND | rec, "")
        extra = flags & ~(MS_BIND | MS_REC)
        if extra:
            mount("", target, "", extra | MS_REMOUNT | MS_BIND, "")
        return
    mount(source, target, mtype, flags, data)
