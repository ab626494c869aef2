"""Confined layer application: whiteouts, metadata, compression, diffIDs and hostile archives."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import zstandard
from berth_lifecycle.layers import Applied, LayerApplyError, apply_layer, chain_ids


def _apply(tmp_path: Path, data: bytes) -> tuple[Path, Applied]:
    blob = tmp_path / f"blob-{uuid.uuid4().hex}"
    blob.write_bytes(data)
    fs = tmp_path / f"layer-{uuid.uuid4().hex}" / "fs"
    fs.mkdir(parents=True)
    return fs, anyio.run(apply_layer, blob, fs)


def _tree(root: Path) -> dict[str, tuple[int, int, float]]:
    """Everything under root: path → (mode, size, mtime), symlinks not followed."""
    out: dict[str, tuple[int, int, float]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size, st.st_mtime)
    return out


def test_chain_ids() -> None:
    a, b = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    assert chain_ids([a]) == [a]
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()]


def test_metadata_links_devices_and_whiteouts(tmp_path: Path, tar_maker: Callable[[], Any]) -> None:
    data = (
        tar_maker()
        .dir("etc", 0o750, 5, 6)
        .file("etc/conf", b"hello", 0o4755, 1000, 1000, xattrs={"user.berth": "yes"})
        .hardlink("etc/conf-link", "etc/conf")
        .symlink("etc/abs-link", "/etc/conf")
        .device("dev-null", b"3", 1, 3)
        .device("fifo", b"6", 0, 0)
        .file("lower/.wh.gone", b"")
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/new", b"n")
        .dir(".wh..wh.plnk")
        .file(".wh..wh.plnk/123.456", b"aufs")
        .file(".wh..wh.aufs", b"")
        .bytes()
    )
    fs, applied = _apply(tmp_path, data)
    assert applied.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert applied.size == 6
    conf = os.lstat(fs / "etc/conf")
    assert (conf.st_uid, conf.st_gid, stat.S_IMODE(conf.st_mode)) == (1000, 1000, 0o4755)
    assert conf.st_mtime == 1_600_000_000
    assert os.getxattr(fs / "etc/conf", "user.berth") == b"yes"
    assert os.lstat(fs / "etc/conf-link").st_ino == conf.st_ino
    assert os.readlink(fs / "etc/abs-link") == "/etc/conf"
    etc = os.lstat(fs / "etc")
    assert (etc.st_uid, etc.st_gid, stat.S_IMODE(etc.st_mode)) == (5, 6, 0o750)
    assert etc.st_mtime == 1_600_000_000
    dev = os.lstat(fs / "dev-null")
    assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1 and os.minor(dev.st_rdev) == 3
    assert stat.S_ISFIFO(os.lstat(fs / "fifo").st_mode)
    gone = os.lstat(fs / "lower/gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert not (fs / "lower/.wh.gone").exists()
    assert os.getxattr(fs / "opaque", "trusted.overlay.opaque") == b"y"
    assert not (fs / "opaque/.wh..wh..opq").exists()
    assert (fs / "opaque/new").read_bytes() == b"n"
    assert sorted(os.listdir(fs)) == ["dev-null", "etc", "fifo", "lower", "opaque"]


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, bz2.compress, lzma.compress, zstandard.ZstdCompressor().compress, lambda d: d],
)
def test_compressed_layers(tmp_path: Path, tar_maker: Callable[[], Any], compress: Callable[[bytes], bytes]) -> None:
    data = tar_maker().file("a/b", b"content").bytes()
    fs, applied = _apply(tmp_path, compress(data))
    assert (fs / "a/b").read_bytes() == b"content"
    assert applied.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()


def test_not_a_tar_fails(tmp_path: Path) -> None:
    with pytest.raises(LayerApplyError, match="failed to apply layer"):
        _apply(tmp_path, gzip.compress(b"this is not a tar archive" * 100))


def test_hostile_tar_stays_inside_the_layer(tmp_path: Path, tar_maker: Callable[[], Any]) -> None:
    """`../`, absolute paths, writes and whiteouts through symlinks to / all land in the layer."""
    tag = uuid.uuid4().hex
    victim = Path(f"/tmp/berth-victim-{tag}")
    victim.write_text("keep me")
    try:
        _check_hostile(tmp_path, tar_maker, tag, victim)
    finally:
        victim.unlink(missing_ok=True)


def _check_hostile(tmp_path: Path, tar_maker: Callable[[], Any], tag: str, victim: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("s")
    passwd_before = os.stat("/etc/passwd")
    before = _tree(tmp_path)
    data = (
        tar_maker()
        .file("../../escape-" + tag, b"1")
        .file("/abs-" + tag, b"2")
        .symlink("evil", "/")
        .file(f"evil/tmp/x-{tag}", b"3")
        .file(f"evil/tmp/.wh.berth-victim-{tag}", b"")
        .symlink("up", "../../../../../../..")
        .file(f"up/tmp/y-{tag}", b"4")
        .symlink("etcl", "/etc")
        .file(f"etcl/passwd-{tag}", b"5")
        .file("evil/tmp/.wh..wh..opq", b"")
        .bytes()
    )
    fs, _ = _apply(tmp_path, data)
    # Everything went into the layer directory.
    assert (fs / f"escape-{tag}").read_bytes() == b"1"
    assert (fs / f"abs-{tag}").read_bytes() == b"2"
    assert (fs / f"tmp/x-{tag}").read_bytes() == b"3"
    assert (fs / f"tmp/y-{tag}").read_bytes() == b"4"
    assert (fs / f"etc/passwd-{tag}").read_bytes() == b"5"
    assert stat.S_ISCHR(os.lstat(fs / f"tmp/berth-victim-{tag}").st_mode)
    # Nothing outside it changed.
    assert victim.read_text() == "keep me"
    for name in (f"/tmp/x-{tag}", f"/tmp/y-{tag}", f"/etc/passwd-{tag}", f"/abs-{tag}", f"/escape-{tag}"):
        assert not os.path.lexists(name), name
    assert not os.path.lexists(tmp_path.parent / f"escape-{tag}")
    with pytest.raises(OSError):
        os.getxattr("/tmp", "trusted.overlay.opaque")
    after = {p: v for p, v in _tree(tmp_path).items() if not p.startswith(str(fs.parent)) and "blob-" not in p}
    assert after == {p: v for p, v in before.items()}
    assert os.stat("/etc/passwd") == passwd_before


def test_hardlink_to_host_file_is_refused(tmp_path: Path, tar_maker: Callable[[], Any]) -> None:
    passwd_before = os.stat("/etc/passwd")
    for data in (
        tar_maker().hardlink("passwd", "/etc/passwd").bytes(),
        tar_maker().hardlink("passwd", "../../../../etc/passwd").bytes(),
        tar_maker().symlink("etcl", "/etc").hardlink("passwd", "etcl/passwd").bytes(),
    ):
        with pytest.raises(LayerApplyError):
            _apply(tmp_path, data)
    after = os.stat("/etc/passwd")
    assert (after.st_ino, after.st_nlink, after.st_mtime) == (
        passwd_before.st_ino,
        passwd_before.st_nlink,
        passwd_before.st_mtime,
    )


def test_hardlink_within_layer_through_symlinked_dir(tmp_path: Path, tar_maker: Callable[[], Any]) -> None:
    data = tar_maker().file("etc/passwd", b"inner").symlink("etcl", "/etc").hardlink("p", "etcl/passwd").bytes()
    fs, _ = _apply(tmp_path, data)
    assert (fs / "p").read_bytes() == b"inner"
