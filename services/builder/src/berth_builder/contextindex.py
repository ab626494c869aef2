"""The build context read from its archive alone: its tree and moby's sums, no file written.

A build's cache probes need only the sums of the COPY sources and where links lead, and both
come from the tar's headers and contents. So the context is indexed first (one pass over the
archive, no file created), and extracted (`BuildContext.materialise`) only when a COPY or ADD
step misses the cache and must send files: a fully cached rebuild never writes its context.

The index keeps the tree exactly as `context.extract_context` leaves it on disk (later entries
replace earlier ones, a parent that is a link or a file is refused, devices and FIFOs are not
there), so what the sums and the resolution see is what a COPY would send.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tarfile
import threading
import time
from dataclasses import dataclass

from berth_common.securejoin import resolve_links

from berth_builder.context import (
    ContextError,
    Readable,
    clean_member,
    extract_context,
    tarsum_header,
)

ROOT = "."  # the context root, as os.path.relpath names it


@dataclass
class Entry:
    kind: str  # "dir", "file" or "symlink"
    mode: int = 0o755  # permission bits, as extraction sets them
    mtime: float = 0.0
    uid: int = 0
    gid: int = 0
    linkname: str = ""  # a symlink's target, as written
    offset: int = 0  # a file's data in the plain tar (a hard link: its target's)
    size: int = 0
    listed: bool = True  # False: a parent the archive does not list (made on the way)
    nlink: int = 1  # names a hard link gave this file


class ContextIndex:
    """The context's tree, keyed by context-relative path, and each archive entry's tarsum."""

    def __init__(self, tar_path: str) -> None:
        self.tar_path = tar_path
        self.sums: dict[str, str] = {}  # every archive entry's, as moby's tarsum records them
        self._entries: dict[str, Entry] = {ROOT: Entry("dir")}
        self._made_at = time.time()  # the mtime of parents the archive does not list
        self.has_sparse = False  # a GNU sparse file: its bytes are not one run in the tar
        self._children: dict[str, set[str]] = {ROOT: set()}

    # --- building: extraction's rules -------------------------------------------------------

    def _parent(self, parts: list[str]) -> None:
        """The parent directory of `parts`, made as extraction makes it; a link or a file on
        the way is refused, as opening it with O_NOFOLLOW|O_DIRECTORY is."""
        path = ROOT
        for i, part in enumerate(parts[:-1]):
            child = child_path(path, part)
            entry = self._entries.get(child)
            if entry is None:
                self._put(child, Entry("dir", mtime=self._made_at, listed=False))
            elif entry.kind != "dir":
                raise ContextError(
                    f"invalid build context: {'/'.join(parts[: i + 1])} is not a directory"
                )
            path = child

    def _put(self, path: str, entry: Entry) -> None:
        parent, _, name = path.rpartition("/")
        self._children[parent or ROOT].add(name)
        self._entries[path] = entry
        if entry.kind == "dir":
            self._children.setdefault(path, set())

    def remove(self, path: str) -> None:
        """Forget `path` and all below it (the .dockerignore removals)."""
        if path == ROOT or self._entries.pop(path, None) is None:
            return
        parent, _, name = path.rpartition("/")
        self._children[parent or ROOT].discard(name)
        for child in self._children.pop(path, set()):
            self.remove(child_path(path, child))

    def add(self, member: tarfile.TarInfo, parts: list[str]) -> None:
        self._parent(parts)
        path = "/".join(parts)
        existing = self._entries.get(path)
        mode = member.mode & 0o7777
        if member.isdir():
            if existing is not None and existing.kind == "dir":
                existing.mode = mode  # chmod'ed again; its mtime is its first listing's
                if not existing.listed:
                    existing.mtime, existing.listed = member.mtime, True
                return
            self.remove(path)
            self._put(path, Entry("dir", mode, member.mtime, member.uid, member.gid))
            return
        if not (member.isreg() or member.issym() or member.islnk()):
            return  # devices, FIFOs: never created from a context
        if existing is not None and existing.kind == "dir":
            raise ContextError(f"invalid build context: {parts[-1]} is a directory")
        if member.isreg():
            entry = Entry("file", mode, member.mtime, member.uid, member.gid, offset=member.offset_data, size=member.size)
            self.has_sparse |= member.issparse()
        elif member.issym():
            entry = Entry("symlink", 0o777, member.mtime, member.uid, member.gid, linkname=member.linkname)
        else:
            entry = self._hard_link_target(member)
        self.remove(path)
        self._put(path, entry)

    def _hard_link_target(self, member: tarfile.TarInfo) -> Entry:
        target = self._entries.get("/".join(clean_member(member.linkname)) or ROOT)
        if target is None or target.kind == "dir":
            raise ContextError(f"invalid build context: bad hard link {member.name}")
        target.nlink += 1
        return target  # the same data (or link): one inode, as os.link makes it

    # --- reading --------------------------------------------------------------------------

    def resolve(self, rel: str) -> str:
        """secure_join over the index: `rel` with every link followed inside the context
        (`..` stops at the root, absolute targets restart from it); missing parts are joined
        as written. ContextError after too many links."""

        def link_target(components: list[str]) -> str | None:
            entry = self._entries.get("/".join(components))
            return entry.linkname if entry is not None and entry.kind == "symlink" else None

        try:
            resolved = resolve_links(rel, link_target)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ContextError(f"too many links in {rel}") from None
            raise
        return "/".join(resolved) or ROOT

    def kind(self, path: str) -> str:
        """The entry's kind ("dir", "file", "symlink"), or "" when nothing is there."""
        entry = self._entries.get(path)
        return entry.kind if entry is not None else ""

    def walk(self, start: str) -> list[str]:
        """Paths under `start` (itself included unless it is the root), in Go filepath.Walk's
        lexical order; links are not followed."""
        out: list[str] = []

        def visit(path: str) -> None:
            if path != ROOT:
                out.append(path)
            if self.kind(path) == "dir":
                for name in self.children(path):
                    visit(child_path(path, name))

        visit(start)
        return out

    def entry(self, path: str) -> Entry:
        return self._entries[path]

    def entries(self) -> list[tuple[str, Entry]]:
        return list(self._entries.items())

    def children(self, path: str) -> list[str]:
        """A directory's entries' names, sorted."""
        return sorted(self._children[path])

    def read(self, path: str) -> bytes:
        """A file's content, straight from the archive (ContextError for a sparse one)."""
        if self.has_sparse:
            raise ContextError(f"invalid build context: {path} is read from a context with sparse files")
        entry = self._entries[path]
        with open(self.tar_path, "rb") as f:
            return os.pread(f.fileno(), entry.size, entry.offset)


def child_path(parent: str, name: str) -> str:
    """`name` in the directory `parent` (context-relative)."""
    return name if parent == ROOT else f"{parent}/{name}"


def index_archive(
    tar_path: str, max_bytes: int = 0, *, summed: bool = True, stream: Readable | None = None
) -> ContextIndex:
    """Index a plain (uncompressed) tar: ContextError on an unusable archive, one whose tree
    extraction would refuse, or more than `max_bytes` of content. `summed=False`: no tarsums
    (the caller has none, or sums otherwise). `stream`: read the tar from it (the file at
    `tar_path` while it is still being written), not from the file."""
    index = ContextIndex(tar_path)
    total = 0
    try:
        with (
            contextlib.nullcontext(stream) if stream is not None else open(tar_path, "rb") as raw,
            tarfile.open(fileobj=raw, mode="r|") as archive,  # type: ignore[call-overload]
        ):
            for member in archive:
                parts = clean_member(member.name)
                if not parts:
                    continue
                total += max(member.size, 0)
                if max_bytes and total > max_bytes:
                    raise ContextError(f"build context larger than the {max_bytes} bytes allowed")
                index.add(member, parts)
                if summed:
                    index.sums["/".join(parts)] = _tarsum(archive, member)
    except tarfile.TarError as exc:
        raise ContextError(f"invalid build context: {exc}") from None
    return index


def _tarsum(archive: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    digest = hashlib.sha256(tarsum_header(member))
    if member.isreg() and (data := archive.extractfile(member)) is not None:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class BuildContext:
    """One build's context: indexed at once, extracted into `root` the first time a step needs
    its files (`materialise`, blocking, once), with the .dockerignore removals applied to both."""

    def __init__(self, index: ContextIndex, root: str) -> None:
        self.index = index
        self.root = root
        self._ignored: list[str] = []
        self._lock = threading.Lock()  # steps ask from worker threads
        self._extracted = False

    def ignore(self, rel: str) -> None:
        path = self.index.resolve(rel)
        if path != ROOT and self.index.kind(path):
            self.index.remove(path)
            self._ignored.append(path)

    def materialise(self) -> str:
        with self._lock:
            if not self._extracted:
                with open(self.index.tar_path, "rb") as archive:
                    extract_context(archive, self.root)
                for path in self._ignored:
                    _remove_path(os.path.join(self.root, path))
                self._extracted = True
        return self.root


def _remove_path(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
