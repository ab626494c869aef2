"""Where COPY/ADD read the files they send: a directory on disk, or the context's archive itself.

`write_transfers` (copystep.py) walks either through the same four calls. A COPY from the
context reads its files straight out of the context tar (`ArchiveTree`), so the context is never
extracted for it; ADD (which must look inside local archives), `COPY --from` and downloads read
from disk (`DiskTree`).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from typing import Protocol

from berth_builder.context import resolve_in_root
from berth_builder.contextindex import ContextIndex, Entry, child_path

Fix = Callable[[tarfile.TarInfo], tarfile.TarInfo]


class SourceTree(Protocol):
    def resolve(self, rel: str) -> str:
        """The key of `rel`, links followed inside the tree."""
        ...

    def is_dir(self, key: str) -> bool: ...

    def children(self, key: str) -> list[str]:
        """Keys of a directory's entries, sorted by name."""
        ...

    def add(self, tar: tarfile.TarFile, key: str, arcname: str, fix: Fix) -> None:
        """One entry (not what is below it) into `tar` as `arcname`."""
        ...


class DiskTree:
    """Files on disk below `root` (keys are host paths); links are sent as links."""

    def __init__(self, root: str) -> None:
        self.root = root

    def resolve(self, rel: str) -> str:
        return resolve_in_root(self.root, rel)

    def is_dir(self, key: str) -> bool:
        return os.path.isdir(key) and not os.path.islink(key)

    def children(self, key: str) -> list[str]:
        return [os.path.join(key, name) for name in sorted(os.listdir(key))]

    def add(self, tar: tarfile.TarFile, key: str, arcname: str, fix: Fix) -> None:
        tar.add(key, arcname=arcname, recursive=False, filter=fix)


class ArchiveTree:
    """The context as its index describes it (keys are context-relative paths); file contents
    are read from the context tar. For COPY only: ADD looks inside local archives on disk."""

    def __init__(self, index: ContextIndex) -> None:
        self.index = index
        self._written: dict[int, str] = {}  # an entry two paths share (a hard link) -> first name

    def resolve(self, rel: str) -> str:
        return self.index.resolve(rel)

    def is_dir(self, key: str) -> bool:
        return self.index.kind(key) == "dir"

    def children(self, key: str) -> list[str]:
        return [child_path(key, name) for name in self.index.children(key)]

    def add(self, tar: tarfile.TarFile, key: str, arcname: str, fix: Fix) -> None:
        entry = self.index.entry(key)
        info = tarfile.TarInfo(arcname)
        info.mode, info.mtime = entry.mode, entry.mtime
        if entry.kind == "dir":
            info.type = tarfile.DIRTYPE
            tar.addfile(fix(info))
            return
        # As tarfile.add: a file with several names is sent once, then as links to that name.
        first = self._written.setdefault(id(entry), arcname) if entry.nlink > 1 else arcname
        if entry.kind == "file" and first != arcname:
            info.type, info.linkname = tarfile.LNKTYPE, first
            tar.addfile(fix(info))
        elif entry.kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, entry.linkname
            tar.addfile(fix(info))
        else:
            info.size = entry.size
            with open(self.index.tar_path, "rb") as archive:
                tar.addfile(fix(info), _Slice(archive.fileno(), entry))


class _Slice:
    """A file's bytes inside the context tar, read with pread."""

    def __init__(self, fd: int, entry: Entry) -> None:
        self._fd = fd
        self._pos = entry.offset
        self._end = entry.offset + entry.size

    def read(self, n: int = -1) -> bytes:
        want = self._end - self._pos if n < 0 else min(n, self._end - self._pos)
        data = os.pread(self._fd, want, self._pos) if want > 0 else b""
        self._pos += len(data)
        return data
