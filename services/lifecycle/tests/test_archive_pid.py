"""ArchiveOpen (`docker cp`) with a pid: only a process whose root is that container's rootfs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest
from berth_contracts.archives import ArchiveOpen, ArchiveOpened
from berth_contracts.engine import ImageUpload
from berth_contracts.errors import Conflict, InvalidParameter
from berth_contracts.lifecycle import SnapshotMounts, SnapshotPrepare
from berth_testsupport import images as testimages

pytestmark = pytest.mark.anyio

KEY = "a" * 64


async def _snapshot(harness: Any) -> SnapshotMounts:
    lines = await harness.upload(ImageUpload(kind="import"), testimages.busybox_rootfs_tar())
    image_id = lines[0]["status"]
    return await harness.call(SnapshotPrepare(key=KEY, image_id=image_id), SnapshotMounts)


async def test_pid_of_another_process_is_refused(harness: Any, tmp_path: Path) -> None:
    """The test's own pid (root "/"), asked to stat and read a 0600 file: refused."""
    await _snapshot(harness)
    secret = tmp_path / "secret"
    secret.write_text("TOP-SECRET\n")
    secret.chmod(0o600)
    for mode in ("stat", "get", "put"):
        cmd = ArchiveOpen(key=KEY, container_id=KEY, path=str(secret), mode=mode, pid=os.getpid())
        with pytest.raises(Conflict, match=f"container {KEY} is not running as pid {os.getpid()}"):
            await harness.call(cmd, ArchiveOpened)
    # A pid that does not exist: refused the same way, never the host's root.
    with pytest.raises(Conflict, match="does not exist"):
        await harness.call(
            ArchiveOpen(key=KEY, container_id=KEY, path="/", mode="stat", pid=2**22 + 7),
            ArchiveOpened,
        )


async def test_pid_whose_root_is_the_snapshot_is_served(harness: Any, tmp_path: Path) -> None:
    """A process chrooted into the container's overlay (as runc would pivot into it) is used."""
    mounts = await _snapshot(harness)
    [root] = mounts.mounts
    target = tmp_path / "rootfs"
    target.mkdir()
    await anyio.run_process(
        ["mount", "-t", root.type, "-o", ",".join(root.options), root.source, str(target)]
    )
    try:
        (target / "inside").write_text("from the container\n")
        argv = ["chroot", str(target), "/bin/sh", "-c", "echo ready; exec sleep 300"]
        async with await anyio.open_process(argv) as proc:
            try:
                assert proc.stdout is not None
                with anyio.fail_after(30):  # printed from inside: the chroot is done
                    assert await proc.stdout.receive() == b"ready\n"
                opened = await harness.call(
                    ArchiveOpen(key=KEY, container_id=KEY, path="/inside", mode="stat", pid=proc.pid),
                    ArchiveOpened,
                )
                assert opened.stat is not None and opened.stat.size == len("from the container\n")
            finally:
                proc.kill()
    finally:
        await anyio.run_process(["umount", "-l", str(target)])


async def test_bad_key_is_refused_before_use(harness: Any) -> None:
    with pytest.raises(InvalidParameter, match='invalid key: identifier "../x" must match'):
        await harness.call(
            ArchiveOpen(key="../x", container_id=KEY, path="/", mode="stat"), ArchiveOpened
        )
