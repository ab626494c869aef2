"""An image decides what is at /etc/passwd: a FIFO, a device or a huge file must not stall or
feed the user lookup (issue 15, finding 5)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from berth_agent.users import read_in_root, resolve_user
from berth_contracts.errors import InvalidParameter


def _resolve_in_thread(root: Path, user: str) -> list[BaseException | str]:
    """resolve_user on a daemon thread, joined with a bound (old code blocked on a FIFO)."""
    out: list[BaseException | str] = []

    def run() -> None:
        try:
            out.append(repr(resolve_user(str(root), user)))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout=20)
    return out


def test_fifo_at_etc_passwd_is_refused_without_blocking(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    fifo = root / "etc" / "passwd"
    os.mkfifo(fifo)
    try:
        out = _resolve_in_thread(root, "someone")
    finally:
        # Unblock a reader stuck in open() (the code before the fix), so no thread is left.
        if not out:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert out, "the user lookup blocked on a FIFO at /etc/passwd"
    assert isinstance(out[0], InvalidParameter)
    assert "/etc/passwd in the container's rootfs: not a regular file (a FIFO)" in str(out[0])


def test_devices_and_directories_are_not_read(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.mknod(root / "etc" / "passwd", 0o600 | 0o020000, os.makedev(1, 5))  # /dev/zero
    (root / "etc" / "group").mkdir()
    with pytest.raises(InvalidParameter, match=r"not a regular file \(a character device\)"):
        read_in_root(str(root), "/etc/passwd")
    with pytest.raises(InvalidParameter, match=r"not a regular file \(a directory\)"):
        read_in_root(str(root), "/etc/group")


def test_huge_passwd_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    with open(root / "etc" / "passwd", "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(InvalidParameter, match="larger than 4 MiB"):
        read_in_root(str(root), "/etc/passwd")
