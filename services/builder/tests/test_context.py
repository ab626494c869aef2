"""The build context: confined extraction, sources inside the context, moby's cache sums.

The sums are dockerd 20.10's: the same context built there gave these `COPY` history lines."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
from berth_builder.context import ContextError, extract_context, is_archive_header, resolve_in_root
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


DOCKERD_CONTEXT: list[Entry] = [
    ("Dockerfile", "file", b"FROM scratch\nCOPY . /c\n"),
    ("f.txt", "file", b"hi\n"),
    ("outlink", "sym", b"/etc/passwd"),
    ("x_up", "sym", b"../../etc"),
]


def test_cache_sums_are_dockerds(tmp_path: Path) -> None:
    sums = extract_context(make_tar(DOCKERD_CONTEXT), str(tmp_path))
    hasher = ContextHasher(str(tmp_path), sums)
    one = hasher.sources("f.txt")
    assert one[0].hash == "file:63e4fd53e0703f1e446126de2246bde90b0a09aeab29d54844d39e4eb74bc3c3"
    assert copy_comment("COPY", "", one, "/x") == f"COPY {one[0].hash} in /x "
    two = hasher.sources("f.txt") + hasher.sources("./f.txt")
    assert sources_hash(two) == "multi:df1bac41a0b350b3f3d745414195cf0b287e791698f0b2642244f8799f2c6155"
    assert copy_comment("COPY", "1:2", two, "/d/").startswith("COPY --chown=1:2multi:df1bac41")
    whole = hasher.sources(".")
    assert whole[0].hash == "dir:5db053569d9a5c3e774af84b5510a1c86db04c6ef341d24aa7b8cfe9a05a6dc6"


def test_a_changed_file_changes_its_sum(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    sums_a = extract_context(make_tar([("f.txt", "file", b"hi\n")]), str(a))
    sums_b = extract_context(make_tar([("f.txt", "file", b"ho\n")]), str(b))
    sums_c = extract_context(make_tar([("f.txt", "file", b"hi\n")], mode=0o600), str(b / ".."))
    assert sums_a["f.txt"] != sums_b["f.txt"]
    assert sums_a["f.txt"] != sums_c["f.txt"]


def test_wildcards_and_missing_sources(tmp_path: Path) -> None:
    entries: list[Entry] = [("src", "dir", b""), ("src/a.go", "file", b"a"), ("src/b.go", "file", b"b"),
                            ("c.go", "file", b"c"), ("dir", "dir", b""), ("dir/x", "file", b"x")]  # fmt: skip
    hasher = ContextHasher(str(tmp_path), extract_context(make_tar(entries), str(tmp_path)))
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
    sums = extract_context(make_tar(DOCKERD_CONTEXT + [("in", "sym", b"f.txt")]), str(tmp_path))
    hasher = ContextHasher(str(tmp_path), sums)
    for outside in ("outlink", "x_up", "x_up/passwd"):  # links to / and .. resolve inside
        with pytest.raises(ContextError, match="file not found in build context"):
            hasher.sources(outside)
    with pytest.raises(ContextError, match=r"^forbidden path outside the build context: \.\./x \(\)$"):
        hasher.sources("../x")
    assert hasher.sources("in")[0].hash == hasher.sources("f.txt")[0].hash  # a link inside is followed
    assert resolve_in_root(str(tmp_path), "x_up/passwd") == str(tmp_path.resolve() / "etc/passwd")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    with pytest.raises(ContextError, match="^too many links in loop1/x$"):
        resolve_in_root(str(tmp_path), "loop1/x")


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
    with pytest.raises(ContextError, match="not a directory"):
        extract_context(make_tar(hostile), str(root))
    assert list(outside.iterdir()) == []
    sums = extract_context(make_tar(hostile[2:]), str(root))
    assert sorted(sums) == ["abs/file", "b", "dev", "fifo", "up"]  # all summed, as tarsum does
    assert (root / "up").read_bytes() == b"x" and (root / "abs/file").exists() and (root / "b").exists()
    assert not (root / "fifo").exists() and not (root / "dev").exists()
    assert list(outside.iterdir()) == [] and not (tmp_path / "up").exists() and not (tmp_path / "b").exists()


def test_hard_links_resolve_inside(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    extract_context(make_tar([("f", "file", b"data"), ("h", "hard", b"f")]), str(root))
    assert os.stat(root / "h").st_ino == os.stat(root / "f").st_ino
    other = tmp_path / "ctx2"
    other.mkdir()
    with pytest.raises(FileNotFoundError):  # `../../etc/passwd` is `etc/passwd` in the context
        extract_context(make_tar([("h", "hard", b"../../etc/passwd")]), str(other))


def test_compressed_and_broken_archives(tmp_path: Path) -> None:
    raw = make_tar([("f", "file", b"1")]).getvalue()
    packed = gzip.compress(raw)
    assert is_archive_header(raw[:512]) and is_archive_header(packed[:512])
    assert not is_archive_header(b"FROM busybox\n")
    assert list(extract_context(io.BytesIO(packed), str(tmp_path))) == ["f"]
    other = tmp_path / "b"
    other.mkdir()
    with pytest.raises(ContextError, match="invalid build context"):
        extract_context(io.BytesIO(raw[:700]), str(other))


def test_size_limit(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="larger than the 10 bytes allowed"):
        extract_context(make_tar([("f", "file", b"x" * 11)]), str(tmp_path), max_bytes=10)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_a_full_disk_fails_cleanly(tmp_path: Path) -> None:
    import subprocess

    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True)
    try:
        with pytest.raises(ContextError, match="^failed to extract the build context: no space left on device$"):
            extract_context(make_tar([("big", "file", b"x" * (1 << 20))]), str(small))
    finally:
        subprocess.run(["umount", str(small)], check=True)
