"""Docker's copy-up: an empty volume mounted over a directory of the image starts with a copy
of that directory (contents, owners, modes, xattrs), unless the mount says nocopy.

Like moby's copy (containerd continuity's fs.CopyDir): device nodes, FIFOs and sockets are
recreated with mknod, never opened and read (an image's `c 1:5` would fill the disk, a block
device would copy the host's disk into the volume); symlinks are copied as links; hardlinks
within the tree stay hardlinks. Every entry is reached through directory fds opened with
O_NOFOLLOW, so no symlink of the image leads the copy out of the source or the volume.
"""

from __future__ import annotations

import errno
import logging
import os
import stat

from berth_common.securejoin import secure_join
from berth_contracts.lifecycle import Mount

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: if the entry became a FIFO after its lstat, the open does not wait for a writer.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_XATTR_SKIPPED = (errno.ENOTSUP, errno.EPERM, errno.ENODATA, errno.EOPNOTSUPP)


def _at(dir_fd: int, name: str) -> str:
    """A path to `name` in an open directory, for the calls that take no dir_fd."""
    return f"/proc/self/fd/{dir_fd}/{name}"


class _Copier:
    def __init__(self, dst_root_fd: int) -> None:
        self._dst_root_fd = dst_root_fd
        # (st_dev, st_ino) of a multiply-linked source file -> its copy's path below dst (every
        # component a directory this copy made, so the path cannot lead elsewhere).
        self._links: dict[tuple[int, int], str] = {}

    def copy_dir(self, src_fd: int, dst_fd: int, rel: str = "") -> None:
        for entry in sorted(os.scandir(src_fd), key=lambda e: e.name):
            st = entry.stat(follow_symlinks=False)
            self._copy_entry(src_fd, dst_fd, entry.name, st, f"{rel}{entry.name}")

    def _copy_entry(self, src_fd: int, dst_fd: int, name: str, st: os.stat_result, rel: str) -> None:
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst_fd)
            sub_src = os.open(name, _DIR_FLAGS, dir_fd=src_fd)
            try:
                sub_dst = os.open(name, _DIR_FLAGS, dir_fd=dst_fd)
                try:
                    self.copy_dir(sub_src, sub_dst, rel + "/")
                    _copy_meta(sub_src, sub_dst, ".", st)  # after its contents: keeps the mtime
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
            return
        if st.st_nlink > 1 and not stat.S_ISLNK(mode):
            first = self._links.get((st.st_dev, st.st_ino))
            if first is not None:
                os.link(_at(self._dst_root_fd, first), _at(dst_fd, name), follow_symlinks=False)
                return
        if stat.S_ISREG(mode):
            if not _copy_file(src_fd, dst_fd, name):
                return
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst_fd)
        else:
            return
        _copy_meta(src_fd, dst_fd, name, st)
        if st.st_nlink > 1 and not stat.S_ISLNK(mode):
            self._links[(st.st_dev, st.st_ino)] = rel


def _copy_file(src_fd: int, dst_fd: int, name: str) -> bool:
    fd_in = os.open(name, _FILE_FLAGS, dir_fd=src_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd_in).st_mode):  # replaced since its lstat: skip it
            return False
        fd_out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dst_fd)  # fmt: skip
        try:
            while chunk := os.read(fd_in, CHUNK):
                os.write(fd_out, chunk)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
    return True


def _copy_meta(src_fd: int, dst_fd: int, name: str, st: os.stat_result) -> None:
    """Owners, then modes (chown clears setuid/setgid), xattrs, times; never through a link."""
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        # Not a symlink: the entry was created by us just now, in a directory only we write.
        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst_fd)
    src, dst = _at(src_fd, name), _at(dst_fd, name)
    try:
        keys = os.listxattr(src, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _XATTR_SKIPPED:
            raise
        keys = []
    for key in keys:
        try:
            os.setxattr(dst, key, os.getxattr(src, key, follow_symlinks=False), follow_symlinks=False)
        except OSError as exc:  # moby warns and goes on (e.g. security.* on another fs)
            log.warning("copy-up: xattr %s of %s not copied: %s", key, name, exc)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd, follow_symlinks=False)


def copy_tree(src: str, dst: str) -> None:
    """Copy the directory `src` into the existing empty directory `dst` (and src's own metadata)."""
    src_fd = os.open(src, _DIR_FLAGS)
    try:
        dst_fd = os.open(dst, _DIR_FLAGS)
        try:
            _Copier(dst_fd).copy_dir(src_fd, dst_fd)
            st = os.fstat(src_fd)
            os.fchown(dst_fd, st.st_uid, st.st_gid)
            os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))
            os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def copy_up(rootfs: str, targets: list[str], mounts: list[Mount]) -> None:
    by_target = {m.target: m for m in mounts}
    for target in targets:
        mount = by_target.get(target)
        if mount is None or not os.path.isdir(mount.source) or os.listdir(mount.source):
            continue
        src = secure_join(rootfs, target)  # an image symlink cannot point it at host files
        if not os.path.isdir(src) or os.path.islink(src):
            continue
        try:
            copy_tree(src, mount.source)
        except (OSError, RecursionError) as exc:
            log.warning("copying %s of the image into its volume: %s", target, exc)
