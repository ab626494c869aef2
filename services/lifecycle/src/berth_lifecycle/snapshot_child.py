"""The confined reader of a writable layer: `python -I -m berth_lifecycle.snapshot_child '<json>'`.

Security-critical, like layer_child and archive_child: the layer belongs to a container and may
hold anything (symlinks to `/`, to `../../..`, hardlinks, devices). The child unshares its mount
namespace and chroots before it touches a path of the layer, so the kernel resolves every path
inside the layer; links are never followed (lstat, O_NOFOLLOW). Nothing is imported after the
chroot and owners stay numeric (no NSS lookups).

Modes:
- diff: the upper dir is bound on <scratch>/upper and a read-only view of the image's layers
  mounted on <scratch>/lower; prints Docker's changes as JSON [[path, kind], ...] (kind 0 = C,
  1 = A, 2 = D), in walk order (a directory before what is below it).
- layer: chroot into the upper dir; writes the layer as a gzipped tar (overlay whiteouts as
  `.wh.<name>`, opaque directories as `<dir>/.wh..wh..opq`) to the fd `out_fd`, and prints
  {"diff_id": "sha256:...", "empty": bool}. With "take" (a build step's layer, whose container
  goes next and whose directory becomes the new snapshot: Snapshotter.take_layer), the upper dir
  is first made exactly what the tar holds: what the tar leaves out is removed (the runtime's
  mount points, sockets), mtimes are cut to whole seconds and overlayfs' own xattrs dropped.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import shutil
import stat
import sys
import tarfile
import zlib
from typing import Any, BinaryIO

# The same confinement primitives as `docker cp`'s child (imported before any chroot).
from berth_common.mounts import MS_BIND, MS_RDONLY, mount, private_mount_namespace

OPAQUE_XATTR = "trusted.overlay.opaque"
CHANGE_MODIFY, CHANGE_ADD, CHANGE_DELETE = 0, 1, 2
CHUNK = 1 << 20

# What moby's init layer holds (daemon/initlayer): mount points the runtime makes in every
# container. moby diffs and commits against that layer, so they never show; berth's runtime
# makes them in the writable layer, so they are left out here.
INIT_LAYER = {"/dev", "/dev/pts", "/dev/shm", "/dev/console", "/proc", "/sys", "/.dockerenv",
              "/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/etc/mtab"}  # fmt: skip

tarfile.pwd = None  # type: ignore[attr-defined]
tarfile.grp = None  # type: ignore[attr-defined]


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


# --- diff ------------------------------------------------------------------------------------------


def mount_views(spec: dict[str, Any]) -> str:
    private_mount_namespace()
    root = spec["scratch"]
    upper, lower = f"{root}/upper", f"{root}/lower"
    mount(spec["upper"], upper, None, MS_BIND, None, "bind upper")
    lowers: list[str] = spec["lowers"]
    if len(lowers) == 1:
        mount(lowers[0], lower, None, MS_BIND, None, "bind lower")
    elif lowers:
        # Lower dirs only, no upper: overlayfs gives a read-only merged view of the image.
        mount("overlay", lower, "overlay", MS_RDONLY, "lowerdir=" + ":".join(lowers), "mount lower")
    return root


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def stat_differs(new: os.stat_result, old: os.stat_result) -> bool:
    """moby's statDifferent: sizes and times are no measure of change for directories."""
    if (new.st_mode, new.st_uid, new.st_gid, new.st_rdev) != (old.st_mode, old.st_uid, old.st_gid, old.st_rdev):
        return True
    if stat.S_ISDIR(new.st_mode):
        return False
    return new.st_mtime_ns != old.st_mtime_ns or new.st_size != old.st_size


def changes(rel: str = "") -> list[tuple[str, int]]:
    """Changes below the directory `rel` ("" = the root) of the writable layer."""
    out: list[tuple[str, int]] = []
    for name in sorted(os.listdir("/upper" + (rel or "/"))):
        path = f"{rel}/{name}"
        st = os.lstat("/upper" + path)
        if is_whiteout(st):
            out.append((path, CHANGE_DELETE))
            continue
        if only_mount_points(path, st, "/upper"):
            continue
        if path in INIT_LAYER:
            below = changes(path) if stat.S_ISDIR(st.st_mode) else []
            if below:
                out.append((path, CHANGE_MODIFY))
                out.extend(below)
            continue
        old = _lstat("/lower" + path)
        if not stat.S_ISDIR(st.st_mode):
            if old is None:
                out.append((path, CHANGE_ADD))
            elif stat_differs(st, old):
                out.append((path, CHANGE_MODIFY))
            continue
        below = changes(path)
        if old is None:
            out.append((path, CHANGE_ADD))
            out.extend(below)
            continue
        deleted: list[tuple[str, int]] = []
        if stat.S_ISDIR(old.st_mode) and is_opaque("/upper" + path):
            # An opaque directory hides everything the image had there.
            kept = set(os.listdir("/upper" + path))
            gone = sorted(set(os.listdir("/lower" + path)) - kept)
            deleted = [(f"{path}/{n}", CHANGE_DELETE) for n in gone]
        if below or deleted or stat_differs(st, old):
            out.append((path, CHANGE_MODIFY))
            out.extend(below)
            out.extend(deleted)
    return out


# --- layer -----------------------------------------------------------------------------------------


class _HashingGzip:
    """File-like for tarfile: hashes the plain tar (the diffID) and gzips it once.

    The gzip is one member per MiB (a gzip file may have many; every reader decompresses them as
    one stream): a MiB that does not compress (random data, media, archives) is stored
    (level 0) instead of spending deflate's time on it for nothing, the others are deflated at
    level 6. A 64 KiB sample at level 1 decides. The same bytes always give the same blob."""

    CHUNK = 1 << 20
    SAMPLE = 64 << 10

    def __init__(self, out: BinaryIO) -> None:
        self.hash = hashlib.sha256()
        self._out = out
        self._pending = bytearray()
        self._members = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self._pending += data
        while len(self._pending) >= self.CHUNK:
            self._member(bytes(self._pending[: self.CHUNK]))
            del self._pending[: self.CHUNK]
        return len(data)

    def _member(self, chunk: bytes) -> None:
        sample = chunk[: self.SAMPLE]
        level = 0 if len(zlib.compress(sample, 1)) > len(sample) * 0.95 else 6
        self._out.write(gzip.compress(chunk, compresslevel=level, mtime=0))
        self._members += 1

    def close(self) -> None:
        if self._pending or not self._members:  # nothing written still needs one (empty) member
            self._member(bytes(self._pending))
        self._pending.clear()


def _xattrs(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in names:
        if name.startswith("trusted.overlay."):
            continue  # overlayfs' own bookkeeping, never content
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _marker(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE
    info.size = 0
    info.mode = 0
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    return info


def only_mount_points(path: str, st: os.stat_result, prefix: str = "") -> bool:
    """Whether `path` holds nothing but the runtime's mount points (moby's init layer): an
    init path itself, or a directory (like /etc) with only such paths below it."""
    if not stat.S_ISDIR(st.st_mode):
        return path in INIT_LAYER
    names = os.listdir(prefix + path)
    if not names and path not in INIT_LAYER:
        return False  # a directory the container made (`mkdir /x`)
    return all(only_mount_points(f"{path}/{n}", os.lstat(f"{prefix}{path}/{n}"), prefix) for n in names)


def _tar_type(st: os.stat_result) -> bool:
    """Whether tarfile can hold this file (a socket it cannot: gettarinfo gives None)."""
    return stat.S_IFMT(st.st_mode) in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFIFO, stat.S_IFLNK, stat.S_IFCHR, stat.S_IFBLK)


def prune_untarred(rel: str = "") -> None:
    """Take mode, first pass: remove what add_tree leaves out of the tar. (Before the tar is
    written: a removal changes its directory's mtime.)"""
    for name in os.listdir(rel or "/"):
        path = f"{rel}/{name}"
        st = os.lstat(path)
        if is_whiteout(st):
            continue
        if only_mount_points(path, st) or not _tar_type(st):
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        elif stat.S_ISDIR(st.st_mode):
            prune_untarred(path)


def _drop_overlay_xattrs(path: str) -> None:
    """overlayfs' own bookkeeping (uuid, impure, origin...): never in a tar, so never unpacked."""
    for name in os.listxattr(path, follow_symlinks=False):
        if name.startswith("trusted.overlay.") and name != OPAQUE_XATTR:
            os.removexattr(path, name, follow_symlinks=False)


def _as_in_tar(path: str, st: os.stat_result) -> None:
    """Take mode: the entry as unpacking its tar entry would make it."""
    if st.st_mtime_ns % 10**9:
        os.utime(path, ns=(st.st_atime_ns, int(st.st_mtime) * 10**9), follow_symlinks=False)
    _drop_overlay_xattrs(path)


def add_tree(tar: tarfile.TarFile, rel: str = "", take: bool = False) -> int:
    """Add everything below `rel` of the layer (chroot: "/" is the upper dir); entries added."""
    count = 0
    for name in sorted(os.listdir(rel or "/")):
        path = f"{rel}/{name}"
        arc = path.lstrip("/")
        st = os.lstat(path)
        if is_whiteout(st):
            parent, _, base = arc.rpartition("/")
            tar.addfile(_marker(f"{parent}/.wh.{base}" if parent else f".wh.{base}", st))
            count += 1
            continue
        if only_mount_points(path, st):
            continue
        info = tar.gettarinfo(path, arcname=arc)
        if info is None:
            continue  # a socket: not layer content (moby skips them too)
        info.uname = info.gname = ""
        info.mtime = int(info.mtime)  # whole seconds, as moby's tars: no PAX record per entry
        info.pax_headers = _xattrs(path)
        if take:
            _as_in_tar(path, st)
        if info.isreg():
            # O_NONBLOCK: a running container (--pause=false) may have swapped the file for a
            # FIFO since the lstat; opening that must not hang the commit.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as src:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise ValueError(f"{path} changed while it was read")
                tar.addfile(info, src)
        else:
            tar.addfile(info)
        count += 1
        if stat.S_ISDIR(st.st_mode):
            if is_opaque(path):
                tar.addfile(_marker(f"{arc}/.wh..wh..opq", st))
                count += 1
            count += add_tree(tar, path, take)
    return count


def write_layer(out_fd: int, take: bool = False) -> dict[str, Any]:
    if take:
        prune_untarred()
        _drop_overlay_xattrs("/")
    with os.fdopen(out_fd, "wb", buffering=CHUNK) as out:
        sink = _HashingGzip(out)
        tar = tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]
        entries = add_tree(tar, take=take)
        tar.close()
        sink.close()
        out.flush()
        os.fsync(out.fileno())
    return {"diff_id": "sha256:" + sink.hash.hexdigest(), "empty": entries == 0}


def main() -> int:
    spec = json.loads(sys.argv[1])
    try:
        if spec["mode"] == "diff":
            root = mount_views(spec)
            os.chroot(root)
            os.chdir("/")
            sys.path[:] = []
            result: Any = changes()
        else:
            private_mount_namespace()
            os.chroot(spec["upper"])
            os.chdir("/")
            sys.path[:] = []
            result = write_layer(int(spec["out_fd"]), bool(spec.get("take")))
    except (OSError, tarfile.TarError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOENT and not exc.filename:
            print("not found", file=sys.stderr)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
