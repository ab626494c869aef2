"""Volume copy-up: special files are recreated, never read; links never lead out of the roots."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from berth_agent.copyup import copy_up
from berth_contracts.lifecycle import Mount

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mknod and chown need root")


def _volume(tmp_path: Path, target: str) -> tuple[Path, Path, list[Mount]]:
    rootfs = tmp_path / "rootfs"
    vol = tmp_path / "vol"
    (rootfs / target.lstrip("/")).mkdir(parents=True)
    vol.mkdir()
    return rootfs, vol, [Mount(type="bind", source=str(vol), target=target, options=["rbind"])]


@pytest.mark.timeout(20)  # before the fix: /dev/zero is read until the disk is full
def test_devices_and_fifos_are_recreated_not_read(tmp_path: Path) -> None:
    rootfs, vol, mounts = _volume(tmp_path, "/data")
    data = rootfs / "data"
    os.mknod(data / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    os.mknod(data / "null-blk", stat.S_IFBLK | 0o600, os.makedev(7, 200))
    os.mkfifo(data / "pipe", 0o640)
    os.chmod(data / "zero", 0o666)  # mknod's mode went through the umask
    os.chown(data / "pipe", 1234, 5678)
    (data / "file").write_text("hello")
    os.chown(data / "file", 1000, 1000)
    os.chmod(data / "file", 0o4755)
    os.link(data / "file", data / "hard")
    (data / "sub").mkdir()
    os.symlink("/etc/shadow", data / "sub" / "abs")
    os.symlink("../../../../etc", data / "sub" / "rel")

    copy_up(str(rootfs), ["/data"], mounts)

    zero = os.lstat(vol / "zero")
    assert stat.S_ISCHR(zero.st_mode) and zero.st_rdev == os.makedev(1, 5)
    assert stat.S_IMODE(zero.st_mode) == 0o666 and zero.st_size == 0
    blk = os.lstat(vol / "null-blk")
    assert stat.S_ISBLK(blk.st_mode) and blk.st_rdev == os.makedev(7, 200)
    pipe = os.lstat(vol / "pipe")
    assert stat.S_ISFIFO(pipe.st_mode) and stat.S_IMODE(pipe.st_mode) == 0o640
    assert (pipe.st_uid, pipe.st_gid) == (1234, 5678)
    f = os.lstat(vol / "file")
    assert (vol / "file").read_text() == "hello"
    assert stat.S_IMODE(f.st_mode) == 0o4755 and (f.st_uid, f.st_gid) == (1000, 1000)
    assert os.lstat(vol / "hard").st_ino == f.st_ino  # hardlinks stay hardlinks
    assert os.readlink(vol / "sub" / "abs") == "/etc/shadow"  # copied as links, not followed
    assert os.readlink(vol / "sub" / "rel") == "../../../../etc"


def test_symlinked_volume_target_is_not_followed_out_of_rootfs(tmp_path: Path) -> None:
    rootfs, vol, mounts = _volume(tmp_path, "/real")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host file")
    os.symlink(str(outside), rootfs / "data")
    mounts.append(Mount(type="bind", source=str(vol), target="/data", options=["rbind"]))
    copy_up(str(rootfs), ["/data"], mounts)
    assert os.listdir(vol) == []
