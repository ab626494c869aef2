"""The confined layer applier: run as `python -m berth_lifecycle.layer_child <dir> <blob fd>`.

Security-critical. The child opens the layer blob (an fd inherited from the parent), unshares
its mount namespace, chroots into the fresh layer directory and only then reads the archive,
so every path in the tar - `../x`, `/abs`, a path through a symlink planted earlier, a hardlink
target - is resolved by the kernel inside the layer directory and cannot reach the host.

Nothing is imported after the chroot: the import path is emptied first, since a layer may
contain files that sit where the interpreter would look for modules. Owners are numeric
(no NSS lookups inside the chroot, cf. CVE-2019-14271).

OCI whiteouts become overlayfs whiteouts: `.wh.<name>` → char device 0/0 `<name>`;
`.wh..wh..opq` → xattr trusted.overlay.opaque=y on its directory.

Limits (tarlimits): unpacked bytes, entries and header sizes; over one, the child fails and
the parent drops the half-made snapshot.

Prints one JSON line {"diff_id": "sha256:...", "size": <bytes of regular files>} on success;
on failure a message on stderr and exit status 1.
"""

from __future__ import annotations

# Every module the apply needs is imported here, before the chroot.
import bz2
import errno
import gzip
import hashlib
import json
import lzma
import os
import posixpath
import shutil
import stat
import sys
import tarfile
from typing import Any, BinaryIO, cast

from berth_common.mounts import private_mount_namespace

from berth_lifecycle.tarlimits import CappedReader, TarLimits, open_stream

try:
    import zstandard

    DECOMPRESS_ERRORS: tuple[type[Exception], ...] = (gzip.BadGzipFile, lzma.LZMAError, zstandard.ZstdError)
except ImportError:  # optional: zstd layers are refused with a clear message without it
    zstandard = None  # type: ignore[assignment]
    DECOMPRESS_ERRORS = (gzip.BadGzipFile, lzma.LZMAError)

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
WHITEOUT_META = ".wh..wh."
CHUNK = 1 << 20

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


class LayerError(Exception):
    pass


class _Peeked:
    """A reader that gives back the bytes peeked for magic detection first."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            if len(data) < n:
                data += self._rest.read(n - len(data))
            return data
        return self._rest.read(n)


class _Hashing:
    """Hashes everything read through it: the diffID is the sha256 of the uncompressed tar."""

    def __init__(self, src: Any) -> None:
        self._src = src
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._src.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def decompressed(raw: BinaryIO) -> Any:
    head = raw.read(6)
    # The decompressors only ever call read(); typed as BinaryIO for them.
    src = cast(BinaryIO, _Peeked(head, raw))
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=src, mode="rb")
    if head.startswith(ZSTD_MAGIC):
        if zstandard is None:
            raise LayerError("zstd-compressed layers need the zstandard module")
        return zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)
    if head.startswith(BZIP2_MAGIC):
        return bz2.BZ2File(src)
    if head.startswith(XZ_MAGIC):
        return lzma.LZMAFile(src)
    return src


def confine(root: str) -> None:
    """Private mount namespace, then chroot into root; nothing can be imported afterwards."""
    try:
        private_mount_namespace()
    except OSError as exc:
        raise LayerError(exc.strerror or str(exc)) from None
    os.chroot(root)
    os.chdir("/")
    sys.path.clear()
    sys.path_importer_cache.clear()
    os.umask(0)


def clean_path(name: str) -> str:
    """Lexically normalized absolute path; `..` cannot climb above / (and / is the layer dir)."""
    path = posixpath.normpath("/" + name)
    return "/" + path.lstrip("/")


def _remove(path: str, keep_dir: bool = False) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _ensure_parent(path: str) -> None:
    parent = posixpath.dirname(path)
    if parent != "/" and not os.path.isdir(parent):
        # Through symlinks (even dangling ones): inside the chroot they resolve in the layer.
        os.makedirs(os.path.realpath(parent), mode=0o755, exist_ok=True)


def _set_xattrs(path: str, member: tarfile.TarInfo) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        try:
            os.setxattr(
                path,
                key[len("SCHILY.xattr.") :],
                value.encode("utf-8", "surrogateescape"),
                follow_symlinks=False,
            )
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                raise


def apply_tar(src: _Hashing, limits: TarLimits | None = None) -> int:
    """Apply every member under /; returns the bytes of regular files written."""
    size = 0
    dirs: list[tuple[str, tarfile.TarInfo]] = []
    with open_stream(src, limits or TarLimits(), encoding="utf-8", errors="surrogateescape") as tar:
        for member in tar:
            path = clean_path(member.name)
            if path == "/":
                if member.isdir():
                    dirs.append((path, member))
                continue
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if base != OPAQUE and any(part.startswith(WHITEOUT_META) for part in path.split("/")):
                continue  # AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content
            if base == OPAQUE:
                _ensure_parent(path)
                os.setxattr(parent, "trusted.overlay.opaque", b"y", follow_symlinks=False)
                continue
            if base.startswith(WHITEOUT_PREFIX):
                target = posixpath.join(parent, base[len(WHITEOUT_PREFIX) :])
                _ensure_parent(target)
                _remove(target)
                os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
                continue
            _ensure_parent(path)
            if member.isdir():
                _remove(path, keep_dir=True)
                if not os.path.isdir(path) or os.path.islink(path):
                    os.mkdir(path, 0o700)
                dirs.append((path, member))
            elif member.isreg():
                _remove(path)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out:
                    data = tar.extractfile(member)
                    assert data is not None
                    shutil.copyfileobj(data, out, CHUNK)
                size += member.size
            elif member.issym():
                _remove(path)
                os.symlink(member.linkname, path)
            elif member.islnk():
                _remove(path)
                os.link(clean_path(member.linkname), path, follow_symlinks=False)
            elif member.ischr() or member.isblk() or member.isfifo():
                _remove(path)
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
                os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
            else:
                raise LayerError(f"unsupported tar entry type {member.type!r} for {member.name}")
            if member.isdir() or member.islnk():
                # Hardlinks share the target's inode and metadata; dirs get theirs at the end,
                # after their contents were written (which changes their mtime).
                if member.isdir():
                    os.lchown(path, member.uid, member.gid)
                continue
            os.lchown(path, member.uid, member.gid)
            if not member.issym():
                # chmod after chown: chown clears setuid/setgid bits.
                os.chmod(path, member.mode)
            _set_xattrs(path, member)
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
    for path, member in reversed(dirs):
        os.lchown(path, member.uid, member.gid)
        os.chmod(path, member.mode)
        _set_xattrs(path, member)
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
    src.drain()
    return size


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 6):
        print("usage: layer_child <layer dir> <blob fd> [<max bytes> <max entries> <max header>]", file=sys.stderr)
        return 2
    root, fd = argv[1], int(argv[2])
    try:
        limits = TarLimits.from_args(argv[3:])
        raw = os.fdopen(fd, "rb", buffering=CHUNK)
        # Capped below the hash too: the drain after the end of the archive is bounded as well.
        stream = _Hashing(CappedReader(decompressed(raw), limits.max_bytes))
        confine(root)
        size = apply_tar(stream, limits)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"diff_id": "sha256:" + stream.hash.hexdigest(), "size": size}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
