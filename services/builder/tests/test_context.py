"""The build context: its index, confined extraction, sources inside the context, moby's sums.

The sums are dockerd 20.10's: the same context built there gave these `COPY` history lines."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from berth_builder.context import (
    ContextError,
    extract_context,
    is_archive_header,
    plain_tar,
    resolve_in_root,
    tarsum_header,
)
from berth_builder.contextindex import BuildContext, ContextIndex, index_archive
from berth_builder.copysources import ContextHasher, copy_comment, sources_hash

Entry = tuple[str, str, bytes]  # (name, kind, data or link target)


def make_tar(entries: list[Entry], mode: int = 0o644) -> io.BytesIO:
    """A context tar as the docker CLI writes it: owner 0:0, no user names."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.uname = info.gname = ""
            if kind == "file":
                info.mode, info.size = mode, len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]  # fmt: skip
            info.mode = 0o755 if kind == "dir" else 0o777
            info.linkname = data.decode()
            tar.addfile(info)
    buf.seek(0)
    return buf


def index_of(entries: list[Entry], where: Path, mode: int = 0o644, max_bytes: int = 0) -> ContextIndex:
    tar_path = where / f"context-{len(list(where.iterdir()))}.tar"
    tar_path.write_bytes(make_tar(entries, mode).getvalue())
    return index_archive(str(tar_path), max_bytes)


DOCKERD_CONTEXT: list[Entry] = [
    ("Dockerfile", "file", b"FROM scratch\nCOPY . /c\n"),
    ("f.txt", "file", b"hi\n"),
    ("outlink", "sym", b"/etc/passwd"),
    ("x_up", "sym", b"../../etc"),
]


def test_cache_sums_are_dockerds(tmp_path: Path) -> None:
    hasher = ContextHasher(index_of(DOCKERD_CONTEXT, tmp_path))
    one = hasher.sources("f.txt")
    assert one[0].hash == "file:63e4fd53e0703f1e446126de2246bde90b0a09aeab29d54844d39e4eb74bc3c3"
    assert copy_comment("COPY", "", one, "/x") == f"COPY {one[0].hash} in /x "
    two = hasher.sources("f.txt") + hasher.sources("./f.txt")
    assert sources_hash(two) == "multi:df1bac41a0b350b3f3d745414195cf0b287e791698f0b2642244f8799f2c6155"
    assert copy_comment("COPY", "1:2", two, "/d/").startswith("COPY --chown=1:2multi:df1bac41")
    whole = hasher.sources(".")
    assert whole[0].hash == "dir:5db053569d9a5c3e774af84b5510a1c86db04c6ef341d24aa7b8cfe9a05a6dc6"


def test_a_changed_file_changes_its_sum(tmp_path: Path) -> None:
    sums_a = index_of([("f.txt", "file", b"hi\n")], tmp_path).sums
    sums_b = index_of([("f.txt", "file", b"ho\n")], tmp_path).sums
    sums_c = index_of([("f.txt", "file", b"hi\n")], tmp_path, mode=0o600).sums
    assert sums_a["f.txt"] != sums_b["f.txt"]
    assert sums_a["f.txt"] != sums_c["f.txt"]


def test_wildcards_and_missing_sources(tmp_path: Path) -> None:
    entries: list[Entry] = [("src", "dir", b""), ("src/a.go", "file", b"a"), ("src/b.go", "file", b"b"),
                            ("c.go", "file", b"c"), ("dir", "dir", b""), ("dir/x", "file", b"x")]  # fmt: skip
    hasher = ContextHasher(index_of(entries, tmp_path))
    assert [s.path for s in hasher.sources("src/*.go")] == ["src/a.go", "src/b.go"]
    assert [s.path for s in hasher.sources("*.go")] == ["c.go"]  # `*` stays in one directory
    assert [s.path for s in hasher.sources("/d*")] == ["dir"]
    assert hasher.sources("dir")[0].hash.startswith("dir:")
    assert hasher.sources("*.none") == []
    with pytest.raises(ContextError, match="^no source files were specified$"):
        copy_comment("COPY", "", hasher.sources("*.none"), "/x")
    with pytest.raises(ContextError) as caught:
        hasher.sources("nope")
    assert str(caught.value) == (
        "file not found in build context or excluded by .dockerignore: stat nope: file does not exist"
    )


def test_sources_never_leave_the_context(tmp_path: Path) -> None:
    loops: list[Entry] = [("loop1", "sym", b"loop2"), ("loop2", "sym", b"loop1")]
    index = index_of(DOCKERD_CONTEXT + [("in", "sym", b"f.txt")] + loops, tmp_path)
    hasher = ContextHasher(index)
    for outside in ("outlink", "x_up", "x_up/passwd"):  # links to / and .. resolve inside
        with pytest.raises(ContextError, match="file not found in build context"):
            hasher.sources(outside)
    with pytest.raises(ContextError, match=r"^forbidden path outside the build context: \.\./x \(\)$"):
        hasher.sources("../x")
    assert hasher.sources("in")[0].hash == hasher.sources("f.txt")[0].hash  # a link inside is followed
    assert index.resolve("x_up/passwd") == "etc/passwd"
    with pytest.raises(ContextError, match="^too many links in loop1/x$"):
        index.resolve("loop1/x")
    # On disk, the same rule (COPY reads the extracted files through it).
    root = tmp_path / "root"
    root.mkdir()
    extract_context(make_tar(DOCKERD_CONTEXT + loops), str(root))
    assert resolve_in_root(str(root), "x_up/passwd") == str(root.resolve() / "etc/passwd")
    with pytest.raises(ContextError, match="^too many links in loop1/x$"):
        resolve_in_root(str(root), "loop1/x")


def test_extraction_is_confined(tmp_path: Path) -> None:
    root, outside = tmp_path / "ctx", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    hostile: list[Entry] = [
        ("escape", "sym", str(outside).encode()),  # a link to a directory outside...
        ("escape/owned", "file", b"x"),  # ...then a file through it
        ("../up", "file", b"x"),  # `..` names stay inside
        ("/abs/file", "file", b"x"),  # absolute names are taken from the context root
        ("a/../../../b", "file", b"x"),
        ("fifo", "fifo", b""),
        ("dev", "chr", b""),
    ]
    with pytest.raises(ContextError, match="^invalid build context: escape is not a directory$"):
        extract_context(make_tar(hostile), str(root))
    with pytest.raises(ContextError, match="^invalid build context: escape is not a directory$"):
        index_of(hostile, tmp_path)  # the index refuses what extraction refuses
    assert list(outside.iterdir()) == []
    extract_context(make_tar(hostile[2:]), str(root))
    index = index_of(hostile[2:], tmp_path)
    assert sorted(index.sums) == ["abs/file", "b", "dev", "fifo", "up"]  # all summed, as tarsum does
    assert index.walk(".") == ["abs", "abs/file", "b", "up"]  # as on disk: no devices, no FIFOs
    assert (root / "up").read_bytes() == b"x" and (root / "abs/file").exists() and (root / "b").exists()
    assert not (root / "fifo").exists() and not (root / "dev").exists()
    assert list(outside.iterdir()) == [] and not (tmp_path / "up").exists() and not (tmp_path / "b").exists()


def test_hard_links_resolve_inside(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    extract_context(make_tar([("f", "file", b"data"), ("h", "hard", b"f")]), str(root))
    assert os.stat(root / "h").st_ino == os.stat(root / "f").st_ino
    index = index_of([("f", "file", b"data"), ("h", "hard", b"f")], tmp_path)
    assert index.read("h") == b"data" and index.sums["h"] != index.sums["f"]  # its own header
    other = tmp_path / "ctx2"
    other.mkdir()
    with pytest.raises(FileNotFoundError):  # `../../etc/passwd` is `etc/passwd` in the context
        extract_context(make_tar([("h", "hard", b"../../etc/passwd")]), str(other))
    with pytest.raises(ContextError, match="^invalid build context: bad hard link h$"):
        index_of([("h", "hard", b"../../etc/passwd")], tmp_path)


def test_compressed_and_broken_archives(tmp_path: Path) -> None:
    raw = make_tar([("f", "file", b"1")]).getvalue()
    packed = gzip.compress(raw)
    assert is_archive_header(raw[:512]) and is_archive_header(packed[:512])
    assert not is_archive_header(b"FROM busybox\n")
    spool = tmp_path / "body"
    spool.write_bytes(packed)
    plain = plain_tar(str(spool))
    assert not spool.exists() and Path(plain).read_bytes() == raw
    assert list(index_archive(plain).sums) == ["f"]
    spool.write_bytes(raw)
    assert plain_tar(str(spool)) == str(spool)  # already plain: read where it is
    spool.write_bytes(packed[:40])
    with pytest.raises(ContextError, match="invalid build context"):
        plain_tar(str(spool))
    (tmp_path / "cut.tar").write_bytes(raw[:700])
    with pytest.raises(ContextError, match="invalid build context"):
        index_archive(str(tmp_path / "cut.tar"))


def test_size_limit(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="larger than the 10 bytes allowed"):
        index_of([("f", "file", b"x" * 11)], tmp_path, max_bytes=10)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_a_full_disk_fails_cleanly(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True)
    try:
        with pytest.raises(ContextError, match="^failed to extract the build context: no space left on device$"):
            extract_context(make_tar([("big", "file", b"x" * (1 << 20))]), str(small))
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_the_index_is_the_tree_extraction_leaves(tmp_path: Path) -> None:
    """Later entries replace earlier ones, parents are made, contents come from the archive."""
    entries: list[Entry] = [
        ("a/b/f", "file", b"one"),  # parents a and a/b made on the way
        ("a/b/f", "file", b"two"),  # replaced
        ("x", "file", b"a file..."),
        ("x", "dir", b""),  # ...replaced by a directory
        ("x/y", "sym", b"../a/b/f"),
        ("z", "file", b"z"),
    ]
    index = index_of(entries, tmp_path)
    assert index.walk(".") == ["a", "a/b", "a/b/f", "x", "x/y", "z"]
    assert index.kind("x") == "dir" and index.kind("x/y") == "symlink" and index.kind("nope") == ""
    assert index.resolve("x/y") == "a/b/f" and index.read(index.resolve("x/y")) == b"two"
    with pytest.raises(ContextError, match="^invalid build context: x is a directory$"):
        index_of(entries + [("x", "file", b"")], tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    context = BuildContext(index, str(root))
    context.ignore("x/y")  # a link: what it points to goes (moby's removal follows it)
    context.ignore("z")
    assert index.walk(".") == ["a", "a/b", "x", "x/y"] and list(root.iterdir()) == []
    assert context.materialise() == str(root) and context.materialise() == str(root)  # once
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert found == ["a", "a/b", "x", "x/y"] and os.readlink(root / "x/y") == "../a/b/f"


def test_a_sparse_file_is_summed_whole_and_never_read_as_one_run(tmp_path: Path) -> None:
    """GNU tar's sparse files (not what the docker CLI writes) keep their holes out of the tar:
    the sum is of the whole content, and COPY reads such a context from disk (executor.py)."""
    if not shutil.which("tar"):
        pytest.skip("needs GNU tar")
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "holes", "wb") as f:
        f.truncate(1 << 20)
        f.seek(1 << 19)
        f.write(b"data")
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(tmp_path / "c.tar"), "-C", str(src), "holes"], check=True)
    index = index_archive(str(tmp_path / "c.tar"))
    assert index.has_sparse and index.entry("holes").size == 1 << 20
    whole = (src / "holes").read_bytes()
    with tarfile.open(tmp_path / "c.tar") as tar:
        member = tar.getmember("holes")
    assert member.issparse()
    assert index.sums["holes"] == hashlib.sha256(tarsum_header(member) + whole).hexdigest()
    with pytest.raises(ContextError, match="sparse"):
        index.read("holes")
