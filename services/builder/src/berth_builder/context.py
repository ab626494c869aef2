"""The build context on disk: extracted confined, paths resolved inside it, moby's tarsum header.

(What the archive holds and its sums are read without extracting it: contextindex.py. The files
are extracted only when a COPY or ADD step runs.)

Extraction never follows a link: each entry's parent is opened one component at a time with
O_NOFOLLOW|O_DIRECTORY relative to the context root's descriptor, and the entry is created
relative to that descriptor, so a symlink in the archive (or a `..`) can never place a file
outside the context. Links are stored as links. Devices and FIFOs are skipped (a context needs
no special files, and creating device nodes from untrusted input is what we must not do).
"""

from __future__ import annotations

import bz2
import errno
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Protocol

from berth_common.securejoin import secure_join

from berth_builder.dockerignore import go_clean

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class ContextError(Exception):
    """A context that cannot be used; the message is what the client sees."""


def is_archive_header(head: bytes) -> bool:
    """moby's detection: gzip, bzip2, xz, zstd, or a tar header (`ustar` at 257)."""
    magic = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")
    return head.startswith(magic) or head[257:262] == b"ustar"


def clean_member(name: str) -> list[str]:
    cleaned = go_clean("/" + name).lstrip("/")  # an absolute name is taken from the context root
    if not cleaned or cleaned == ".":
        return []
    return cleaned.split("/")


@contextmanager
def _dir_fd(root_fd: int, parts: list[str], create: bool) -> Iterator[int]:
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ContextError(f"invalid build context: {'/'.join(parts)} is not a directory") from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _remove_existing(fd: int, name: str, new_is_dir: bool) -> None:
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if new_is_dir:
            return
        raise ContextError(f"invalid build context: {name} is a directory")
    os.unlink(name, dir_fd=fd)


def write_all(fd: int, data: bytes) -> None:
    """os.write until all is written: a short write (a disk filling up) is followed by the
    ENOSPC of the next one, never silently ignored."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_file(fd: int, name: str, data: IO[bytes] | None, mode: int) -> None:
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd)
    try:
        while data is not None and (chunk := data.read(1 << 20)):
            write_all(out, chunk)
        os.fchmod(out, mode)
    finally:
        os.close(out)


def tarsum_header(member: tarfile.TarInfo, owner_names: tuple[str, str] = ("", "")) -> bytes:
    """tarsum v1's header selection of a tar entry as the client sent it (moby hashes the
    context archive itself): uname/gname are left empty, mtime is not part of it."""
    typeflag = member.type
    if typeflag in (tarfile.AREGTYPE, b""):
        typeflag = tarfile.DIRTYPE if member.name.endswith("/") else tarfile.REGTYPE
    size = member.size if member.isreg() else 0
    name = member.pax_headers.get("path", member.name) if member.pax_headers else member.name
    fields = [
        ("name", name + ("/" if member.isdir() and not name.endswith("/") else "")),
        ("mode", str(member.mode)),
        ("uid", str(member.uid)),
        ("gid", str(member.gid)),
        ("size", str(size)),
        ("typeflag", typeflag.decode("latin-1")),
        ("linkname", member.linkname),
        ("uname", owner_names[0]),
        ("gname", owner_names[1]),
        ("devmajor", str(member.devmajor)),
        ("devminor", str(member.devminor)),
    ]
    xattrs = sorted((k[len("SCHILY.xattr.") :], v) for k, v in member.pax_headers.items() if k.startswith("SCHILY.xattr."))
    return tarsum_v1(fields + xattrs)


def tarsum_v1(fields: list[tuple[str, str]]) -> bytes:
    """tarsum v1's encoding of selected header fields (then xattrs): each name, then its value."""
    return b"".join(k.encode() + v.encode("utf-8", "surrogateescape") for k, v in fields)


def extract_context(stream: IO[bytes] | Readable, root: str) -> None:
    """Extract a (possibly compressed) context tar into the empty directory `root`.
    ContextError on an unusable archive or a full disk. (Its sums: contextindex.py.)"""
    dirs: list[tuple[list[str], float]] = []
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as archive:  # type: ignore[call-overload]
            for member in archive:
                parts = clean_member(member.name)
                if not parts:
                    continue
                _extract_one(root_fd, archive, member, parts)
                if member.isdir():
                    dirs.append((parts, member.mtime))
        _dir_times(root_fd, dirs)
    except tarfile.TarError as exc:
        raise ContextError(f"invalid build context: {exc}") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ContextError("failed to extract the build context: no space left on device") from None
        raise
    finally:
        os.close(root_fd)


_OPENERS = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}


def is_compressed(head: bytes) -> bool:
    """A body plain_tar decompresses first (gzip, bzip2, xz)."""
    return head.startswith(tuple(_OPENERS))


def plain_tar(spool: str) -> str:
    """The spooled context as a plain tar (the index reads file contents at their offsets):
    a gzip, bzip2 or xz body is decompressed next to it (and the compressed one removed)."""
    with open(spool, "rb") as f:
        head = f.read(6)
    opener = next((o for magic, o in _OPENERS.items() if head.startswith(magic)), None)
    if opener is None:
        return spool
    plain = spool + ".tar"
    try:
        with opener(spool, "rb") as packed, open(plain, "xb") as out:  # type: ignore[operator]
            shutil.copyfileobj(packed, out, 1 << 20)
    except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise ContextError(f"invalid build context: {exc}") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ContextError("failed to extract the build context: no space left on device") from None
        raise ContextError(f"invalid build context: {exc}") from None
    os.unlink(spool)
    return plain


def _dir_times(root_fd: int, dirs: list[tuple[list[str], float]]) -> None:
    """Directories' mtimes again once their contents are written (COPY keeps them, as moby)."""
    for parts, mtime in reversed(dirs):
        try:
            with _dir_fd(root_fd, parts[:-1], create=False) as fd:
                ns = int(mtime * 10**9)
                os.utime(parts[-1], ns=(ns, ns), dir_fd=fd, follow_symlinks=False)
        except (OSError, ContextError):
            continue  # replaced by a later entry: nothing to restore


def _extract_one(root_fd: int, archive: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str]) -> None:
    with _dir_fd(root_fd, parts[:-1], create=True) as fd:
        name = parts[-1]
        if member.isdir():
            _remove_existing(fd, name, new_is_dir=True)
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            os.chmod(name, member.mode & 0o7777, dir_fd=fd, follow_symlinks=False)
        elif member.isreg():
            _remove_existing(fd, name, new_is_dir=False)
            _write_file(fd, name, archive.extractfile(member), member.mode & 0o7777)
        elif member.issym():
            _remove_existing(fd, name, new_is_dir=False)
            os.symlink(member.linkname, name, dir_fd=fd)
        elif member.islnk():
            target = clean_member(member.linkname)
            if not target:
                raise ContextError(f"invalid build context: bad hard link {member.name}")
            _remove_existing(fd, name, new_is_dir=False)
            with _dir_fd(root_fd, target[:-1], create=False) as src_fd:
                os.link(target[-1], name, src_dir_fd=src_fd, dst_dir_fd=fd, follow_symlinks=False)
            return
        else:
            return  # devices, FIFOs: never created from a context
        # No chown: COPY/ADD from the context give files 0:0 (or --chown) whatever the archive
        # says, and the archive's owners are in the sums; so the builder need not be root.
        if not member.issym():
            mtime = int(member.mtime * 10**9)
            os.utime(name, ns=(mtime, mtime), dir_fd=fd, follow_symlinks=False)


def resolve_in_root(root: str, rel: str) -> str:
    """moby's FollowSymlinkInScope: `rel` inside `root`, links followed as if `root` were `/`.

    The result is always under `root` (`..` stops at the root, absolute link targets restart
    from it). Raises ContextError after too many links."""
    try:
        return secure_join(os.path.realpath(root), rel)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ContextError(f"too many links in {rel}") from None
        raise


def context_rel(rel: str) -> str:
    """moby's calcCopyInfo trimming: `/a` and `./a` name `a` in the context."""
    return rel.removeprefix("/").removeprefix("./")


def check_in_context(rel: str) -> str:
    """Refuse `../x` as moby does: the cleaned path must stay in the context."""
    cleaned = go_clean(rel)
    if cleaned == ".." or cleaned.startswith("../"):
        raise ContextError(f"forbidden path outside the build context: {rel} ()")
    return cleaned
