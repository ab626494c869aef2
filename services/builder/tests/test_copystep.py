"""COPY/ADD placement (moby's copier rules) and the tars that carry the files."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from berth_builder.chown import resolve_chown
from berth_builder.context import ContextError
from berth_builder.contextindex import BuildContext, ContextIndex, index_archive
from berth_builder.copyfrom import split_source
from berth_builder.copysources import ContextHasher
from berth_builder.copystep import (
    MULTIPLE_NEEDS_DIR,
    context_sources,
    is_archive,
    normalize_dest,
    parse_chown,
    plan,
    write_transfers,
)
from berth_builder.sourcetrees import ArchiveTree, DiskTree, SourceTree


def _context(tmp_path: Path) -> tuple[str, ContextIndex]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, mode in (("f.txt", b"hello\n", 0o640), ("d/sub/y", b"x\n", 0o600)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1700000000
            tar.addfile(info, io.BytesIO(data))
        for name in ("d", "d/sub"):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o750, 1600000000
            tar.addfile(info)
        inner = io.BytesIO()
        with tarfile.open(fileobj=inner, mode="w:gz") as t:
            info = tarfile.TarInfo("inside")
            t.addfile(info, io.BytesIO(b""))
        info = tarfile.TarInfo("a.tar.gz")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    root = tmp_path / "root"
    root.mkdir()
    tar_path = tmp_path / "context.tar"
    tar_path.write_bytes(buf.getvalue())
    context = BuildContext(index_archive(str(tar_path)), str(root))
    return context.materialise(), context.index


@pytest.mark.parametrize(
    ("workdir", "dest", "expected"),
    [("/app", ".", "/app"), ("/app", "x/", "/app/x/"), ("", "rel", "/rel"), ("/w", "/abs/", "/abs/")],
)
def test_normalize_dest(workdir: str, dest: str, expected: str) -> None:
    assert normalize_dest(workdir, dest) == expected


def test_chown_is_numeric_and_a_lone_uid_is_also_the_group() -> None:
    assert parse_chown("") == (0, 0)
    assert parse_chown("10") == (10, 10)
    assert parse_chown("10:20") == (10, 20)
    assert parse_chown("nobody") is None and parse_chown("1:users") is None  # looked up later
    passwd, group = "root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n", "root:x:0:\nstaff:x:50:\n"
    assert resolve_chown("user", passwd, "user:x:1000:\n") == (1000, 1000)
    assert resolve_chown("user:staff", passwd, group) == (1000, 50)
    assert resolve_chown("7:staff", passwd, group) == (7, 50)
    with pytest.raises(ContextError, match="can't find uid for user ghost: no such user: ghost"):
        resolve_chown("ghost", passwd, group)
    with pytest.raises(ContextError, match="can't find gid for group user: no such group: user"):
        resolve_chown("user", passwd, group)
    with pytest.raises(ContextError, match="invalid chown string format: a:b:c"):
        parse_chown("a:b:c")


def _names(path: str) -> list[tuple[str, int, int, int]]:
    with tarfile.open(path) as tar:
        return [(m.name, m.mode, m.uid, int(m.mtime)) for m in tar]


@pytest.mark.parametrize("from_archive", [False, True])
def test_placement_owners_and_directory_times(tmp_path: Path, from_archive: bool) -> None:
    root, index = _context(tmp_path)
    hasher = ContextHasher(index)
    out = str(tmp_path)
    tree: SourceTree = ArchiveTree(index) if from_archive else DiskTree(root)
    # A file onto a path: that name; into a directory (a trailing slash, or one that exists).
    copy = plan(root, "copy", context_sources(hasher, "copy", ["f.txt"]), "/etc/new", "", "/")
    [t] = write_transfers(copy, "copy", False, out, tree)
    assert (t.dest_dir, _names(t.tar_path)) == ("/etc", [("new", 0o640, 0, 1700000000)])
    [t] = write_transfers(copy, "copy", True, out, tree)
    assert (t.dest_dir, [n[0] for n in _names(t.tar_path)]) == ("/etc/new", ["f.txt"])
    # A directory: its contents, each directory after what it holds (so its mtime stays).
    copy = plan(root, "copy", context_sources(hasher, "copy", ["d"]), "data", "7:8", "/w")
    [t] = write_transfers(copy, "copy", False, out, tree)
    assert t.dest_dir == "/w/data"
    with tarfile.open(t.tar_path) as tar:
        assert [(m.name, m.uid, m.gid, int(m.mtime)) for m in tar] == [
            ("sub/y", 7, 8, 1700000000), ("sub", 7, 8, 1600000000),
        ]  # fmt: skip
    with pytest.raises(ContextError, match=MULTIPLE_NEEDS_DIR):
        plan(root, "copy", context_sources(hasher, "copy", ["f.txt", "d"]), "/x", "", "/")


def test_add_extracts_a_local_tar_and_copy_does_not(tmp_path: Path) -> None:
    root, index = _context(tmp_path)
    assert is_archive(os.path.join(root, "a.tar.gz")) and not is_archive(os.path.join(root, "f.txt"))
    hasher = ContextHasher(index)
    add = plan(root, "add", context_sources(hasher, "add", ["a.tar.gz"]), "/x/", "", "/")
    main, archive = write_transfers(add, "add", False, str(tmp_path), DiskTree(root))
    assert _names(main.tar_path) == [] and (archive.dest_dir, archive.tar_path) == ("/x", os.path.join(root, "a.tar.gz"))
    copy = plan(root, "copy", context_sources(hasher, "copy", ["a.tar.gz"]), "/x/", "", "/")
    [only] = write_transfers(copy, "copy", False, str(tmp_path), ArchiveTree(index))
    assert [n[0] for n in _names(only.tar_path)] == ["a.tar.gz"]
    with pytest.raises(ContextError, match="source can't be a URL for COPY"):
        context_sources(hasher, "copy", ["http://x/y"])


def _members(path: str) -> list[tuple[object, ...]]:
    with tarfile.open(path) as tar:
        out: list[tuple[object, ...]] = []
        for m in tar:
            f = tar.extractfile(m) if m.isreg() else None
            mtime = 0 if m.issym() else int(m.mtime)  # on disk a link has its extraction time
            out.append((m.name, m.type, m.mode, m.uid, m.gid, mtime, m.linkname, f.read() if f else b""))
        return out


def test_the_archive_tree_sends_what_the_extracted_context_sends(tmp_path: Path) -> None:
    """COPY reads the context's tar instead of its extracted files: the same tar goes out."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, mode in (
            ("app", "dir", b"", 0o750), ("app/a.txt", "file", b"a" * 5000, 0o644),
            ("app/bin", "file", b"#!/bin/sh\n", 0o755), ("app/link", "sym", b"a.txt", 0o777),
            ("app/hard", "hard", b"app/a.txt", 0o644), ("app/deep/er/f", "file", b"f", 0o600),
        ):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = mode, 1650000000 + len(name)
            info.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "sym": tarfile.SYMTYPE,
                         "hard": tarfile.LNKTYPE}[kind]  # fmt: skip
            if kind in ("sym", "hard"):
                info.linkname = data.decode()
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if kind == "file" else None)
    (tmp_path / "context.tar").write_bytes(buf.getvalue())
    root = tmp_path / "root"
    root.mkdir()
    context = BuildContext(index_archive(str(tmp_path / "context.tar")), str(root))
    sent: dict[tuple[str, bool], list[tuple[object, ...]]] = {}
    for srcs in (".", "app/a.txt app/link app/hard"):  # the whole context; one file by three names
        for from_archive in (False, True):
            tree: SourceTree = ArchiveTree(context.index) if from_archive else DiskTree(context.materialise())
            out = tmp_path / f"out-{from_archive}-{len(srcs)}"
            out.mkdir()
            sources = context_sources(ContextHasher(context.index), "copy", srcs.split())
            copy = plan(context.root, "copy", sources, "/dest/", "1:2", "/")
            [t] = write_transfers(copy, "copy", True, str(out), tree)
            sent[srcs, from_archive] = _members(t.tar_path)
        assert sent[srcs, True] == sent[srcs, False]
    whole = sent[".", True]
    assert [m[0] for m in whole] == [
        "app/a.txt", "app/bin", "app/deep/er/f", "app/deep/er", "app/deep", "app/hard", "app/link", "app",
    ]  # fmt: skip
    assert whole[5][1] == tarfile.LNKTYPE and whole[5][6] == "app/a.txt"  # one inode
    assert [(m[0], m[1]) for m in sent["app/a.txt app/link app/hard", True]] == [
        ("a.txt", tarfile.REGTYPE), ("link", tarfile.LNKTYPE), ("hard", tarfile.LNKTYPE),
    ]  # fmt: skip  (`link` resolves to a.txt, which has two names: sent as a link to it)


@pytest.mark.parametrize(
    ("src", "fetched", "inside"),
    [
        ("/usr/bin/x", "/usr/bin/x", "x"), ("out/", "/out", "out"), ("/", "/", "."),
        ("/app/*.txt", "/app", "app/*.txt"), ("/*.txt", "/", "*.txt"), ("/a/b*/c", "/a", "a/b*/c"),
    ],
)  # fmt: skip
def test_copy_from_sources_split_into_what_is_fetched_and_matched(src: str, fetched: str, inside: str) -> None:
    assert split_source(src) == (fetched, inside)
