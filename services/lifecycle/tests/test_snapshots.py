"""Snapshots through the service, mounted for real with overlayfs."""
# ruff: noqa: ASYNC221, ASYNC240 - a test inspects real mounts and files directly; blocking is fine here

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from berth_contracts.engine import ImageUpload
from berth_contracts.errors import Conflict, NotFound
from berth_contracts.lifecycle import (
    ImageDelete,
    ImageDeleted,
    ImageFound,
    ImageResolve,
    Mount,
    SnapshotGetMounts,
    SnapshotMounts,
    SnapshotPrepare,
    SnapshotRemove,
    SnapshotRemoved,
)
from berth_testsupport import images as testimages

pytestmark = pytest.mark.anyio


@contextlib.contextmanager
def mounted(mounts: list[Mount], where: Path) -> Iterator[Path]:
    """Mount the rootfs the way the runtime side will (mount -t type -o options source target)."""
    assert len(mounts) == 1 and mounts[0].target == "/"
    m = mounts[0]
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", m.type, "-o", ",".join(m.options), m.source, str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


async def test_overlay_rootfs_with_whiteouts_and_opaque_dirs(harness: Any, tmp_path: Path) -> None:
    img = testimages.multilayer_docker_save(["multi:1"])
    await harness.upload(ImageUpload(kind="load"), img.data)
    res = await harness.call(SnapshotPrepare(key="c" * 64, image_id=img.image_id), SnapshotMounts)
    (m,) = res.mounts
    assert (m.type, m.source, m.target) == ("overlay", "overlay", "/")
    opts = dict(o.split("=", 1) if "=" in o else (o, "") for o in m.options)
    assert "index" in opts and opts["index"] == "off"
    lowers = opts["lowerdir"].split(":")
    assert len(lowers) == 2
    # Top layer first: the one with the whiteouts.
    assert os.path.exists(os.path.join(lowers[0], "layer2.txt"))
    assert (await harness.call(SnapshotGetMounts(key="c" * 64), SnapshotMounts)).mounts == res.mounts

    with mounted(res.mounts, tmp_path / "root") as root:
        for path, data in testimages.MULTILAYER_VISIBLE.items():
            assert (root / path.lstrip("/")).read_bytes() == data
        for path in testimages.MULTILAYER_HIDDEN:
            assert not os.path.lexists(root / path.lstrip("/")), path
        assert os.listdir(root / "opq") == ["new.txt"]
        assert (root / "bin/busybox").stat().st_size > 0
        # A container's writes land in its own layer, not in the image's.
        (root / "etc/hostname").write_text("changed\n")
        (root / "data/kept.txt").unlink()
        out = subprocess.run(["chroot", str(root), "/bin/sh", "-c", "cat /etc/hostname; ls /data"],
                             capture_output=True, text=True, check=True).stdout
        assert out == "changed\n"
    upper = Path(opts["upperdir"])
    assert (upper / "etc/hostname").read_text() == "changed\n"
    for lower in lowers:
        assert not (Path(lower) / "etc/hostname").exists() or Path(lower, "etc/hostname").read_text() == "berth\n"

    # A second container from the same image starts clean.
    other = await harness.call(SnapshotPrepare(key="d" * 64, image_id="multi:1"), SnapshotMounts)
    with mounted(other.mounts, tmp_path / "root2") as root:
        assert (root / "etc/hostname").read_text() == "berth\n"
        assert (root / "data/kept.txt").exists()
    # A retried prepare gets the same answer; the key for another image is a conflict.
    again = await harness.call(SnapshotPrepare(key="d" * 64, image_id="multi:1"), SnapshotMounts)
    assert again.mounts == other.mounts
    await harness.upload(ImageUpload(kind="load"), testimages.docker_save_archive(["one:1"]).data)
    with pytest.raises(Conflict, match="already exists"):
        await harness.call(SnapshotPrepare(key="d" * 64, image_id="one:1"), SnapshotMounts)

    # Measured as moby's directory.Size: no directories, links once, a symlink its target's length
    # ("changed\n" + 1000 bytes + "etc/hostname"; the whiteout of kept.txt counts 0).
    (upper / "big").write_bytes(b"x" * 1000)
    os.link(upper / "big", upper / "big2")
    os.symlink("etc/hostname", upper / "ln")
    removed = await harness.call(SnapshotRemove(key="c" * 64, measure=True), SnapshotRemoved)
    assert removed.size == 8 + 1000 + 12
    assert not upper.exists()
    assert all(Path(lower).exists() for lower in lowers)
    with pytest.raises(NotFound):
        await harness.call(SnapshotGetMounts(key="c" * 64), SnapshotMounts)
    with pytest.raises(NotFound):
        await harness.call(SnapshotRemove(key="c" * 64), SnapshotRemoved)


async def test_single_layer_image_uses_overlay(harness: Any, tmp_path: Path) -> None:
    img = testimages.docker_save_archive(["one:1"])
    await harness.upload(ImageUpload(kind="load"), img.data)
    res = await harness.call(SnapshotPrepare(key="s1", image_id="one:1"), SnapshotMounts)
    assert res.mounts[0].type == "overlay"
    with mounted(res.mounts, tmp_path / "root") as root:
        (root / "tmp/written").write_text("x")
    lower = next(o for o in res.mounts[0].options if o.startswith("lowerdir=")).split("=", 1)[1]
    assert not (Path(lower) / "tmp/written").exists()


async def test_forced_image_delete_keeps_layers_a_container_uses(harness: Any, tmp_path: Path) -> None:
    img = testimages.multilayer_docker_save(["multi:1"])
    await harness.upload(ImageUpload(kind="load"), img.data)
    await harness.call(SnapshotPrepare(key="ctr", image_id="multi:1"), SnapshotMounts)
    # Untagging the last name of an image a container uses leaves it dangling.
    res = await harness.call(ImageDelete(ref="multi:1"), ImageDeleted)
    assert res.untagged == ["multi:1"] and res.deleted == []
    assert (await harness.call(ImageResolve(ref=img.image_id), ImageFound)).image.repo_tags == []
    with pytest.raises(Conflict, match="image is being used by stopped container ctr"):
        await harness.call(ImageDelete(ref=img.image_id), ImageDeleted)
    res = await harness.call(ImageDelete(ref=img.image_id, force=True), ImageDeleted)
    assert res.deleted == [img.image_id]  # the layers stay: the container needs them
    mounts = await harness.call(SnapshotGetMounts(key="ctr"), SnapshotMounts)
    with mounted(mounts.mounts, tmp_path / "root") as root:
        assert (root / "layer2.txt").read_bytes() == b"two\n"
    await harness.call(SnapshotRemove(key="ctr"), SnapshotRemoved)
    assert harness.lifecycle.meta.snapshots() == []
    assert list((harness.root / "snapshots").iterdir()) == []

    # Forced removal by its last name deletes the image even while a container uses it.
    await harness.upload(ImageUpload(kind="load"), img.data)
    await harness.call(SnapshotPrepare(key="ctr2", image_id="multi:1"), SnapshotMounts)
    res = await harness.call(ImageDelete(ref="multi:1", force=True), ImageDeleted)
    assert res.untagged == ["multi:1"] and res.deleted == [img.image_id]
    await harness.call(SnapshotRemove(key="ctr2"), SnapshotRemoved)
    assert harness.lifecycle.meta.snapshots() == []
