"""Limits of layer extraction and `docker cp` uploads: bytes, entries, header sizes; a layer over
a limit fails with LayerApplyError and leaves no snapshot behind."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from berth_lifecycle.layers import LayerApplyError, apply_layer
from berth_lifecycle.metadata import Metadata
from berth_lifecycle.snapshots import Snapshotter

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the confined children need root")



def _stopped_root(root: Path) -> dict[str, Any]:
    """archive_child's spec for a stopped container whose filesystem is the directory `root`
    (bind-mounted on a scratch directory beside it, in the child's own mount namespace)."""
    scratch = root.parent / f"{root.name}-scratch"
    scratch.mkdir(exist_ok=True)
    return {"rootfs": {"type": "bind", "source": str(root), "options": []}, "scratch": str(scratch)}

def _blob(tmp_path: Path, data: bytes) -> Path:
    blob = tmp_path / f"blob-{uuid.uuid4().hex}"
    blob.write_bytes(data)
    return blob


def _many(tar_maker: Callable[[], Any], n: int) -> bytes:
    t = tar_maker()
    for i in range(n):
        t.file(f"f{i}", b"")
    return bytes(t.bytes())


def _huge_pax_name(size: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("x")
        info.pax_headers = {"comment": "a" * size}
        tar.addfile(info, io.BytesIO(b""))
    return buf.getvalue()


def _bomb(size: int) -> bytes:
    """A gzip'd tar whose one file is `size` zero bytes (a few KiB compressed)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
    return gzip.compress(raw.getvalue())


def test_layer_over_the_entry_limit_fails_and_leaves_no_snapshot(
    tmp_path: Path, tar_maker: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BERTH_TAR_MAX_ENTRIES", "20")
    snaps = Snapshotter(tmp_path / "snapshots", Metadata(tmp_path / "meta.db"))
    blob = _blob(tmp_path, _many(tar_maker, 21))
    with pytest.raises(LayerApplyError, match="more than the limit of 20 entries"):
        anyio.run(snaps.ensure_layer, "sha256:" + "1" * 64, "", blob, "sha256:" + "2" * 64, 0)
    assert list((tmp_path / "snapshots").iterdir()) == []
    assert snaps.meta.snapshots() == []


def test_layer_over_the_byte_limit_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_TAR_MAX_BYTES", str(1 << 20))
    fs = tmp_path / "fs"
    fs.mkdir()
    with pytest.raises(LayerApplyError, match="larger than the limit"):
        anyio.run(apply_layer, _blob(tmp_path, _bomb(8 << 20)), fs)
    assert sum(p.stat().st_size for p in fs.rglob("*")) <= 1 << 20


def test_layer_with_a_huge_pax_header_fails_by_default(tmp_path: Path) -> None:
    """tarfile would read a header of any size into memory; Go's archive/tar stops at 1 MiB."""
    fs = tmp_path / "fs"
    fs.mkdir()
    with pytest.raises(LayerApplyError, match="header is larger than the limit"):
        anyio.run(apply_layer, _blob(tmp_path, _huge_pax_name(2 << 20)), fs)
    anyio.run(apply_layer, _blob(tmp_path, _huge_pax_name(100_000)), fs)  # under it: fine


def _put(root: Path, data: bytes, limits: dict[str, int] | None = None) -> subprocess.CompletedProcess[bytes]:
    spec: dict[str, Any] = {"mode": "put", "path": "/", **_stopped_root(root)}
    if limits is not None:
        spec["limits"] = limits
    return subprocess.run(
        [sys.executable, "-I", "-m", "berth_lifecycle.archive_child", json.dumps(spec)],
        input=data, capture_output=True, timeout=60, check=False,
    )  # fmt: skip


def test_cp_archive_limits_and_invalid_archives(tmp_path: Path, tar_maker: Callable[[], Any]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    res = _put(root, _many(tar_maker, 11), {"max_entries": 10})
    assert res.returncode == 4 and b"more than the limit of 10 entries" in res.stderr
    res = _put(root, _huge_pax_name(2 << 20))
    assert res.returncode == 4 and b"header is larger than the limit" in res.stderr
    res = _put(root, _bomb(4 << 20), {"max_bytes": 1 << 20})
    assert res.returncode == 4 and b"larger than the limit" in res.stderr
    # A gzip'd archive is accepted (as by dockerd); garbage is an invalid archive (400), not a 500.
    res = _put(root, gzip.compress(tar_maker().file("ok", b"fine").bytes()))
    assert res.returncode == 0, res.stderr
    assert (root / "ok").read_bytes() == b"fine"
    res = _put(root, b"\x1f\x8bnot gzip at all" * 10)
    assert res.returncode == 4, res.stderr
    # Found by test_fuzz_archives: a hardlink to a member not in the archive was a traceback (500).
    res = _put(root, tar_maker().hardlink("l", "/etc").bytes())
    assert res.returncode == 4 and b"Traceback" not in res.stderr, res.stderr


def test_cp_archive_breakouts_are_refused_like_moby(tmp_path: Path, tar_maker: Callable[[], Any]) -> None:
    """Found by test_fuzz_archives: a symlink named `..` sent tarfile into endless recursion."""
    root = tmp_path / "root"
    (root / "dst").mkdir(parents=True)

    def put(data: bytes) -> subprocess.CompletedProcess[bytes]:
        spec = {"mode": "put", "path": "/dst", **_stopped_root(root)}
        return subprocess.run(
            [sys.executable, "-I", "-m", "berth_lifecycle.archive_child", json.dumps(spec)],
            input=data, capture_output=True, timeout=60, check=False,
        )  # fmt: skip

    for data, words in [
        (tar_maker().symlink("..", "..").bytes(), b"outside of the destination"),
        (tar_maker().file("../up", b"x").bytes(), b"outside of the destination"),
        (tar_maker().symlink("l", "../../x").bytes(), b"invalid symlink"),
        (tar_maker().hardlink("h", "../etc/passwd").bytes(), b"invalid hardlink"),
    ]:
        res = put(data)
        assert res.returncode == 4 and words in res.stderr and b"Traceback" not in res.stderr, res.stderr
    assert not (root / "up").exists()
    # Found by test_fuzz_archives: a file over a FIFO hung the child (tarfile opened the FIFO).
    os.mkfifo(root / "dst" / "pipe")
    res = put(tar_maker().file("pipe", b"data").bytes())
    assert res.returncode == 0, res.stderr
    assert (root / "dst" / "pipe").read_bytes() == b"data"
    res = put(tar_maker().file("/abs", b"a").symlink("s", "/etc").bytes())
    assert res.returncode == 0, res.stderr
    assert (root / "dst" / "abs").read_bytes() == b"a"  # below the destination, as dockerd does
    assert os.readlink(root / "dst" / "s") == "/etc"
