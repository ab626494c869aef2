"""Concurrent loads, crash leftovers, and Docker 25+ save archives (layer.tar symlinked to blobs)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from berth_common.gotime import rfc3339nano
from berth_contracts.engine import ImageUpload
from berth_contracts.lifecycle import ImageFound, ImageResolve
from berth_lifecycle.events import Recorder
from berth_lifecycle.service import Lifecycle
from berth_testsupport import images as testimages

pytestmark = pytest.mark.anyio


async def test_concurrent_loads_unpack_each_layer_once(harness: Any) -> None:
    data = testimages.multilayer_docker_save(["multi:1"]).data
    results: list[list[dict[str, Any]]] = []

    async def one() -> None:
        results.append(await harness.upload(ImageUpload(kind="load"), data))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert results == [[{"stream": "Loaded image: multi:1\n"}]] * 3
    assert len(harness.lifecycle.meta.snapshots("committed")) == 2
    assert len(list((harness.root / "snapshots").iterdir())) == 2


def _docker25_save(img: testimages.BuiltImage, layer_tar: bytes) -> bytes:
    """Docker 25+ layout: blobs/sha256/*, index.json, manifest.json naming blobs, legacy links."""
    out = io.BytesIO()
    config_hex = img.image_id.split(":")[1]
    layer_hex = img.diff_ids[0].split(":")[1]
    with tarfile.open(fileobj=out, mode="w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add(f"blobs/sha256/{config_hex}", img.config)
        add(f"blobs/sha256/{layer_hex}", layer_tar)
        link = tarfile.TarInfo(f"{layer_hex}/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, f"../blobs/sha256/{layer_hex}"
        tar.addfile(link)
        manifest = [{"Config": f"blobs/sha256/{config_hex}", "RepoTags": ["d25:1"],
                     "Layers": [f"{layer_hex}/layer.tar"]}]
        add("manifest.json", json.dumps(manifest).encode())
        add("index.json", b'{"schemaVersion":2,"manifests":[]}')
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    return out.getvalue()


async def test_docker25_save_archive(harness: Any) -> None:
    img = testimages.docker_save_archive(["ignored:1"])
    data = _docker25_save(img, testimages.busybox_rootfs_tar())
    assert await harness.upload(ImageUpload(kind="load"), data) == [{"stream": "Loaded image: d25:1\n"}]
    assert (await harness.call(ImageResolve(ref="d25:1"), ImageFound)).image.id == img.image_id


def test_recovery_drops_half_made_snapshots(tmp_path: Path) -> None:
    root = tmp_path / "lifecycle"
    lc = Lifecycle.open(root, Recorder())
    row = lc.meta.add_snapshot("extract-dead", "extracting", "", "", rfc3339nano())
    (lc.snapshots.fs(row.n) / "bin").mkdir(parents=True)
    stray = root / "snapshots" / "999"
    stray.mkdir()
    orphan = lc.content.write_bytes(b"a blob no image references")
    lc.close()
    lc = Lifecycle.open(root, Recorder())
    try:
        assert lc.meta.snapshots() == []
        assert list((root / "snapshots").iterdir()) == []
        assert not lc.content.exists(orphan)
    finally:
        lc.close()
