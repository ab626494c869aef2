"""COPY/ADD from the context: which files, where they land (moby's copier.go rules), and the
tar that carries them into the step container (PUT through the archive API, as `docker cp`).

The tar is written from the context's archive (or a directory on disk: sourcetrees.py) without
following links: a link in the context stays a link in the image. Entries belong to 0:0 (or --chown), keep mode and mtime.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import posixpath
import tarfile
from dataclasses import dataclass

from berth_builder.chown import needs_lookup, split_chown
from berth_builder.context import ContextError
from berth_builder.copysources import ContextHasher, CopySource, copy_comment
from berth_builder.sourcetrees import Fix, SourceTree

MULTIPLE_NEEDS_DIR = "When using COPY with more than one source file, the destination must be a directory and end with a /"


@dataclass
class CopyPlan:
    comment: str  # the step's cache key and history text
    sources: list[CopySource]
    dest: str  # absolute, a trailing slash kept
    owner: tuple[int, int] | None  # None: names, looked up in the step container
    chown: str
    root: str  # where the sources are (the context's directory, or a staging directory)
    no_decompress: bool = False  # ADD <url>: the download is copied as it is


def parse_chown(chown: str) -> tuple[int, int] | None:
    """Numeric --chown=uid[:gid] (a lone uid is also the group); None when names must be
    looked up in the image (chown.py), (0, 0) without --chown."""
    if not chown:
        return 0, 0
    if needs_lookup(chown):
        return None
    user, group = split_chown(chown)
    return int(user), int(group)


def normalize_dest(workdir: str, requested: str) -> str:
    """moby's normalizeDest: relative to WORKDIR, cleaned, a trailing slash kept."""
    slash = requested.endswith("/")
    if requested.startswith("/"):
        return requested
    dest = posixpath.normpath(posixpath.join("/", workdir or "/", requested))
    return dest + "/" if slash and dest != "/" else dest


def context_sources(hasher: ContextHasher, kind: str, srcs: list[str]) -> list[CopySource]:
    """Blocking: the sources in the build context (wildcards expanded), with their sums."""
    for src in srcs:
        if kind == "copy" and "://" in src:
            raise ContextError("source can't be a URL for COPY")
    return [found for src in srcs for found in hasher.sources(src)]


def plan(
    root: str, kind: str, sources: list[CopySource], dest: str, chown: str, workdir: str
) -> CopyPlan:
    """`sources` are relative to `root` (the context, or a COPY --from staging directory)."""
    owner = parse_chown(chown)
    comment = copy_comment(kind.upper(), chown, sources, dest)
    dest = normalize_dest(workdir, dest)
    if len(sources) > 1 and not dest.endswith("/"):
        raise ContextError(MULTIPLE_NEEDS_DIR)
    return CopyPlan(comment, sources, dest, owner, chown, root)


def is_archive(path: str) -> bool:
    """ADD extracts a local tar (plain, gzip, bzip2, xz) instead of copying it."""
    opener = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open, b"\xfd7": lzma.open}
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        with opener.get(head, open)(path, "rb") as f:  # type: ignore[operator]
            block = f.read(512)
    except (OSError, EOFError, lzma.LZMAError):
        return False
    if len(block) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
    except tarfile.TarError:
        return False
    return True


def _add_tree(tar: tarfile.TarFile, tree: SourceTree, key: str, name: str, fix: Fix) -> None:
    """A directory after its contents: extracting the contents would change its mtime again."""
    if tree.is_dir(key):
        for child in tree.children(key):
            _add_tree(tar, tree, child, f"{name}/{posixpath.basename(child)}", fix)
    tree.add(tar, key, name, fix)


@dataclass
class Transfer:
    dest_dir: str  # where the tar is PUT (made when missing)
    tar_path: str


def _owned(uid: int, gid: int) -> Fix:
    def fix(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
        info.mtime = int(info.mtime)
        return info

    return fix


def write_transfers(
    copy: CopyPlan, kind: str, dest_is_dir: bool, out_dir: str, tree: SourceTree
) -> list[Transfer]:
    """Blocking: the tars to PUT, in order, the sources read from `tree`. `dest_is_dir`: the
    destination exists as a directory in the image (a single file source then goes inside it)."""
    assert copy.owner is not None, "names in --chown are resolved before the tar is written"
    uid, gid = copy.owner
    fix = _owned(uid, gid)
    dest = copy.dest.rstrip("/") or "/"
    transfers: list[Transfer] = []
    main = os.path.join(out_dir, "copy.tar")
    main_dir = dest
    with tarfile.open(main, "w", format=tarfile.PAX_FORMAT) as tar:
        for source in copy.sources:
            key = tree.resolve(source.path)
            if tree.is_dir(key):
                for child in tree.children(key):
                    _add_tree(tar, tree, child, posixpath.basename(child), fix)
            elif kind == "add" and not copy.no_decompress and is_archive(key):
                transfers.append(Transfer(dest, key))  # a DiskTree's: ADD reads from disk
            else:
                name = posixpath.basename(source.path.rstrip("/"))
                if not (copy.dest.endswith("/") or dest_is_dir):
                    main_dir, name = posixpath.dirname(dest) or "/", posixpath.basename(dest)
                tree.add(tar, key, name, fix)
    return [Transfer(main_dir, main), *transfers]
