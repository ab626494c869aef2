"""The writable-layer reader (`docker diff`, the layer `docker commit` writes): overlay whiteouts
and opaque directories, moby's change kinds, and a round trip through berth's own layer applier."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from berth_lifecycle.layers import apply_layer

C, A, D = 0, 1, 2
OPAQUE = "trusted.overlay.opaque"


def _child(spec: dict[str, Any], pass_fds: tuple[int, ...] = ()) -> Any:
    res = subprocess.run(
        [sys.executable, "-I", "-m", "berth_lifecycle.snapshot_child", json.dumps(spec)],
        capture_output=True, timeout=120, check=False, pass_fds=pass_fds,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr.decode()
    return json.loads(res.stdout)


def _whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, Path]:
    """An image layer and a container's upper dir over it, as overlayfs leaves them."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("bin", "etc", "home/user", "opq", "keep/deep"):
        (lower / d).mkdir(parents=True)
    (lower / "bin" / "ls").write_bytes(b"ls")
    (lower / "etc" / "passwd").write_bytes(b"root\n")
    (lower / "home" / "user" / ".profile").write_bytes(b"p")
    (lower / "opq" / "old.txt").write_bytes(b"old")
    (lower / "keep" / "deep" / "same").write_bytes(b"s")
    for d in ("bin", "etc", "opq", "newdir/sub", "keep/deep", "etc2"):
        (upper / d).mkdir(parents=True)
    for d in ("bin", "etc", "keep", "keep/deep"):
        os.chmod(upper / d, stat.S_IMODE(os.stat(lower / d).st_mode))
    _whiteout(upper / "bin" / "ls")
    (upper / "etc" / "passwd").write_bytes(b"root\nmod\n")
    _whiteout(upper / "home")  # rm -rf /home
    os.setxattr(upper / "opq", OPAQUE, b"y")  # rm -rf /opq; mkdir /opq
    (upper / "opq" / "new.txt").write_bytes(b"new")
    (upper / "newdir" / "sub" / "f").write_bytes(b"x\n")
    (upper / "newfile").write_bytes(b"hi\n")
    os.symlink("/etc/shadow", upper / "escape")  # a link out of the layer: stored as a link
    os.symlink("../../../../..", upper / "etc2" / "up")
    os.link(upper / "newfile", upper / "hardlink")
    # Mount points berth's runtime makes: moby's init layer holds them, so they never show.
    (upper / "etc" / "hosts").write_bytes(b"")
    (upper / "proc").mkdir()
    (upper / "keep" / "deep" / "copied-up-unchanged").write_bytes(b"")
    os.unlink(upper / "keep" / "deep" / "copied-up-unchanged")
    return lower, upper


def test_diff_reports_moby_kinds(layers: tuple[Path, Path], tmp_path: Path) -> None:
    lower, upper = layers
    scratch = tmp_path / "mnt"
    (scratch / "upper").mkdir(parents=True)
    (scratch / "lower").mkdir()
    found = _child({"mode": "diff", "upper": str(upper), "lowers": [str(lower)], "scratch": str(scratch)})
    assert [tuple(c) for c in found] == [
        ("/bin", C), ("/bin/ls", D),
        ("/escape", A),
        ("/etc", C), ("/etc/passwd", C),
        ("/etc2", A), ("/etc2/up", A),
        ("/hardlink", A),
        ("/home", D),
        ("/newdir", A), ("/newdir/sub", A), ("/newdir/sub/f", A),
        ("/newfile", A),
        ("/opq", C), ("/opq/new.txt", A), ("/opq/old.txt", D),
    ]  # fmt: skip


def _tree(root: Path) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            kind = stat.S_IFMT(st.st_mode)
            data: Any = None
            if stat.S_ISREG(st.st_mode):
                data = p.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                data = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode):
                data = st.st_rdev
            elif stat.S_ISDIR(st.st_mode):
                data = os.getxattr(p, OPAQUE, follow_symlinks=False) if OPAQUE in os.listxattr(p) else None
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, data)
    return out


def test_layer_round_trip_through_berths_applier(layers: tuple[Path, Path], tmp_path: Path) -> None:
    _, upper = layers
    os.chown(upper / "newfile", 1000, 1000)
    out = tmp_path / "layer.tar.gz"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        result = _child({"mode": "layer", "upper": str(upper), "out_fd": fd}, pass_fds=(fd,))
    finally:
        os.close(fd)
    assert result["empty"] is False
    raw = out.read_bytes()
    plain = gzip.decompress(raw)
    assert result["diff_id"] == "sha256:" + hashlib.sha256(plain).hexdigest()
    with tarfile.open(out) as tar:
        names = tar.getnames()
        escape = tar.getmember("escape")
    assert "bin/.wh.ls" in names and ".wh.home" in names and "opq/.wh..wh..opq" in names
    assert "etc/hosts" not in names and "proc" not in names
    assert escape.issym() and escape.linkname == "/etc/shadow"
    target = tmp_path / "applied"
    target.mkdir()
    applied = anyio.run(apply_layer, out, target)
    assert applied.diff_id == result["diff_id"]
    want = {k: v for k, v in _tree(upper).items() if k not in ("etc/hosts", "proc")}
    assert _tree(target) == want


def _layer(upper: Path, out: Path) -> Any:
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return _child({"mode": "layer", "upper": str(upper), "out_fd": fd}, pass_fds=(fd,))
    finally:
        os.close(fd)


def test_incompressible_data_is_stored_not_deflated(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    random_part = os.urandom(3 << 20)
    (upper / "random.bin").write_bytes(random_part)
    (upper / "zeros.bin").write_bytes(bytes(3 << 20))
    first = _layer(upper, tmp_path / "a.tar.gz")
    second = _layer(upper, tmp_path / "b.tar.gz")
    raw = (tmp_path / "a.tar.gz").read_bytes()
    assert raw == (tmp_path / "b.tar.gz").read_bytes() and first == second  # deterministic
    plain = gzip.decompress(raw)  # every member, as one stream
    assert first["diff_id"] == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert raw.count(b"\x1f\x8b\x08\x00\x00\x00\x00\x00") >= 6  # one gzip member a MiB
    # The random MiBs are stored (a few bytes over their size), the zeros deflated to little.
    assert 3 << 20 < len(raw) < (3 << 20) + (256 << 10)
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        member = tar.extractfile("random.bin")
        assert member is not None and member.read() == random_part
    target = tmp_path / "applied"
    target.mkdir()
    assert anyio.run(apply_layer, tmp_path / "a.tar.gz", target).diff_id == first["diff_id"]


def test_empty_layer(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hosts").write_bytes(b"")
    out = tmp_path / "layer.tar.gz"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        result = _child({"mode": "layer", "upper": str(upper), "out_fd": fd}, pass_fds=(fd,))
    finally:
        os.close(fd)
    # /etc is only there for the runtime's mount point: moby would commit no layer at all.
    assert result["empty"] is True


def test_layer_never_follows_links_out(tmp_path: Path) -> None:
    """A link to a host file is stored as a link; the host file's bytes never enter the layer."""
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"host only")
    upper = tmp_path / "upper"
    upper.mkdir()
    os.symlink(str(secret), upper / "abs")
    os.symlink("../host-secret", upper / "rel")
    os.mkfifo(upper / "fifo")
    out = tmp_path / "layer.tar.gz"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        _child({"mode": "layer", "upper": str(upper), "out_fd": fd}, pass_fds=(fd,))
    finally:
        os.close(fd)
    assert b"host only" not in gzip.decompress(out.read_bytes())
    with tarfile.open(out) as tar:
        kinds = {m.name: (m.type, m.linkname) for m in tar}
    assert kinds == {"abs": (tarfile.SYMTYPE, str(secret)), "rel": (tarfile.SYMTYPE, "../host-secret"),
                     "fifo": (tarfile.FIFOTYPE, "")}  # fmt: skip


def _full_tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """_tree, plus each entry's mtime (whiteouts aside: unpacking makes them anew) and xattrs."""
    out: dict[str, tuple[Any, ...]] = {}
    for rel, entry in _tree(root).items():
        st = os.lstat(root / rel)
        whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        xattrs = sorted(os.listxattr(root / rel, follow_symlinks=False))
        out[rel] = (*entry, st.st_gid, None if whiteout else st.st_mtime_ns, xattrs)
    return out


def test_take_mode_leaves_the_upper_as_unpacking_its_tar_would(layers: tuple[Path, Path], tmp_path: Path) -> None:
    """A build step's layer becomes the new snapshot by a rename (Snapshotter.take_layer): the
    child first makes the upper dir exactly what the tar it writes holds."""
    import socket

    _, upper = layers
    os.utime(upper / "newfile", ns=(0, 1_700_000_000_123_456_789), follow_symlinks=False)  # sub-second
    os.setxattr(upper / "etc", "trusted.overlay.origin", b"\x00fh")  # overlayfs' bookkeeping
    os.setxattr(upper, "trusted.overlay.impure", b"y")  # on the root too
    os.setxattr(upper / "newdir", "user.kept", b"v")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(upper / "sock"))  # a socket: no tar entry
    result = _layer_take(upper, tmp_path / "layer.tar.gz")
    target = tmp_path / "applied"
    target.mkdir()
    applied = anyio.run(apply_layer, tmp_path / "layer.tar.gz", target)
    assert applied.diff_id == result["diff_id"]
    taken = _full_tree(upper)
    assert "etc/hosts" not in taken and "proc" not in taken and "sock" not in taken
    assert taken["newfile"][5] == 1_700_000_000 * 10**9
    assert taken["etc"][6] == [] and taken["newdir"][6] == ["user.kept"] and taken["opq"][6] == [OPAQUE]
    assert taken == _full_tree(target)
    assert os.listxattr(upper) == os.listxattr(target) == []


def _layer_take(upper: Path, out: Path) -> Any:
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return _child({"mode": "layer", "upper": str(upper), "out_fd": fd, "take": True}, pass_fds=(fd,))
    finally:
        os.close(fd)
