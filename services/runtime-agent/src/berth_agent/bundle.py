"""Bundle directory helpers: writing files, and removing a bundle without touching a mounted rootfs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from berth_common.mounts import is_mountpoint, umount

log = logging.getLogger(__name__)

# `--ipc shareable`: a tmpfs in the bundle that is the container's /dev/shm and its IPC
# joiners' (dockerd keeps it in the container's directory).
SHM_DIR = "shm"
SHM_OPTIONS = ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")


def write_json(path: Path, data: Any) -> None:
    """Atomically, 0600: config.json holds the container's environment (secrets)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # a .tmp left by a crash keeps its mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(data))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def unmount_rootfs(bundle: Path) -> None:
    rootfs = str(bundle / "rootfs")
    for _ in range(8):  # stacked mounts: peel them all
        if not is_mountpoint(rootfs):
            return
        with contextlib.suppress(OSError):
            umount(rootfs)


def remove_bundle(bundle: Path) -> None:
    """Remove the bundle; never recurse into rootfs (it could still be the container's files)."""
    if not bundle.exists():
        return
    unmount_rootfs(bundle)
    shm = bundle / SHM_DIR
    while is_mountpoint(str(shm)):
        try:
            umount(str(shm))
        except OSError as exc:
            log.warning("leaving %s mounted: %s", shm, exc)
            break
    for entry in bundle.iterdir():
        if entry.name == "rootfs" and entry.is_dir() and not entry.is_symlink():
            try:
                entry.rmdir()
            except OSError as exc:
                log.warning("leaving %s in place: %s", entry, exc)
        elif entry.name == SHM_DIR and entry.is_dir() and not entry.is_symlink():
            with contextlib.suppress(OSError):
                entry.rmdir()
        elif entry.is_dir() and not entry.is_symlink():
            log.warning("unexpected directory %s left in bundle", entry)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
    with contextlib.suppress(OSError):
        bundle.rmdir()
