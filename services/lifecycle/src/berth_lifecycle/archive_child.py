"""The confined `docker cp` worker: `python -I -m berth_lifecycle.archive_child '<json>'`.

Security-critical, like layer_child. The child chroots into the container's root before it
touches any container path, so every path and every symlink in the container (`/target` → `/`,
`../../..`, links swapped while we work) is resolved by the kernel inside that root:

- running container: its root is /proc/<pid>/root (its own mount namespace, volumes included),
  only once procroot has seen that this pid's root is the container's rootfs;
- stopped container: the child unshares its mount namespace, mounts the snapshot on a scratch
  directory, binds the volumes at their targets (resolved inside the root, made in the
  container's layer if missing, as moby does) and chroots there; the mounts vanish with the child.

Nothing is imported after the chroot, and user/group names are never looked up (no NSS modules
loaded from the container, cf. CVE-2019-14271): tar headers carry numeric owners only.

Modes: stat (prints the stat JSON), get (writes a tar to stdout), put (reads a tar on stdin),
export (the whole root as a tar on stdout: `docker export`, from a read-only view of the layers).
Exit status 2: path not found; 3: not a directory / would overwrite; 4: not a valid archive or
over a limit (tarlimits: bytes, entries, header sizes; spec["limits"]); 5: the pid is not the
container's; 1: anything else.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import shutil
import stat
import sys
import tarfile
import zlib
from typing import Any

from berth_common.gotime import rfc3339nano
from berth_common.mounts import (
    MS_BIND,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    mount,
    private_mount_namespace,
)
from berth_common.securejoin import secure_join

from berth_lifecycle.layer_child import DECOMPRESS_ERRORS, LayerError, decompressed
from berth_lifecycle.procroot import EXIT_NOT_THAT_CONTAINER, NotThatContainer, open_container_root
from berth_lifecycle.tarlimits import TarLimits, open_stream

# No user/group name lookups: tarfile skips them when these are None.
tarfile.pwd = None  # type: ignore[attr-defined]
tarfile.grp = None  # type: ignore[attr-defined]

# Go's os.FileMode type bits, which Docker's stat JSON uses.
_GO_DIR, _GO_LINK, _GO_PIPE, _GO_SOCK = 1 << 31, 1 << 27, 1 << 25, 1 << 24
_GO_DEV, _GO_CHAR, _GO_SETUID, _GO_SETGID, _GO_STICKY = 1 << 26, 1 << 21, 1 << 23, 1 << 22, 1 << 20


class Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def mount_stopped(spec: dict[str, Any]) -> str:
    private_mount_namespace()
    root = spec["scratch"]
    rootfs = spec["rootfs"]
    if rootfs["type"] == "bind":
        flags, data = MS_BIND | MS_REC, None
    else:
        flags, data = 0, ",".join(rootfs["options"])
    mount(rootfs["source"], root, rootfs["type"], flags, data, "mount rootfs")
    for m in spec.get("mounts", []):
        dest = secure_join(root, m["target"])
        if not make_mount_point(m["source"], dest):
            continue
        mount(m["source"], dest, None, MS_BIND | MS_REC, None, "bind")
        if m.get("readonly"):
            mount(None, dest, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None, "remount ro")
    return root


def make_mount_point(source: str, dest: str) -> bool:
    """The mount point of a volume or bind, made in the container's layer if missing (moby's
    mountVolumes does the same, as runc does at start): a container that never ran has no
    /vol1 yet, and a copy into /vol1 must land in the volume. False: nothing to mount on."""
    if os.path.isdir(dest) or os.path.isfile(dest):
        return True
    if os.path.lexists(dest) or not os.path.exists(source):
        return False  # a dangling link or a special file; a bind whose source is gone
    if os.path.isdir(source):
        os.makedirs(dest, mode=0o755)
    else:
        os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
        os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
    return True


def go_mode(st: os.stat_result) -> int:
    mode = st.st_mode & 0o777
    kind = stat.S_IFMT(st.st_mode)
    mode |= {
        stat.S_IFDIR: _GO_DIR,
        stat.S_IFLNK: _GO_LINK,
        stat.S_IFIFO: _GO_PIPE,
        stat.S_IFSOCK: _GO_SOCK,
        stat.S_IFBLK: _GO_DEV,
        stat.S_IFCHR: _GO_DEV | _GO_CHAR,
    }.get(kind, 0)
    if st.st_mode & stat.S_ISUID:
        mode |= _GO_SETUID
    if st.st_mode & stat.S_ISGID:
        mode |= _GO_SETGID
    if st.st_mode & stat.S_ISVTX:
        mode |= _GO_STICKY
    return mode


def _lstat(path: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        raise Fail(2, "not found") from None
    except NotADirectoryError:
        raise Fail(2, "not found") from None


def do_stat(path: str) -> dict[str, Any]:
    st = _lstat(path)
    link = ""
    if stat.S_ISLNK(st.st_mode):
        link = os.path.realpath(path)  # inside the chroot: the container's view
    mtime = rfc3339nano(st.st_mtime_ns)
    base = posixpath.basename(path.rstrip("/")) or "/"
    return {"name": base, "size": st.st_size, "mode": go_mode(st), "mtime": mtime,
            "linkTarget": link}  # fmt: skip


def arcname(path: str) -> str:
    """Docker's rebase: the tar's top entry is the path's last element ("." for `dir/.`)."""
    if path.endswith("/.") or path == ".":
        return "."
    return posixpath.basename(path.rstrip("/")) or "."


def do_get(path: str) -> None:
    _lstat(path)
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(path, arcname=arcname(path), recursive=True)


def do_export() -> None:
    """`docker export`: the whole root, entries named as in dockerd's (`bin/`, `.dockerenv`)."""
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir("/")):
            tar.add("/" + name, arcname=name, recursive=True, filter=_whole_seconds)


def _whole_seconds(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """moby's tars carry whole-second mtimes: no PAX record per entry."""
    info.mtime = int(info.mtime)
    return info


def _would_replace(dest_dir: str, member: tarfile.TarInfo) -> bool:
    target = os.path.join(dest_dir, member.name)
    try:
        st = os.lstat(target)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) != member.isdir()


def _escapes(rel: str) -> bool:
    return rel == ".." or rel.startswith("../")


def within_destination(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """moby's breakout checks (pkg/archive): a name or a hardlink that leaves the destination,
    or a relative symlink pointing above it, is an invalid archive; absolute names are taken
    below the destination (Go's filepath.Join(dest, "/x") is dest/x, os.path.join's is /x)."""
    name = posixpath.normpath(member.name).lstrip("/") or "."
    if _escapes(name):
        raise Fail(4, f"invalid archive: {member.name!r} is outside of the destination")
    if name == "." and not member.isdir():
        raise Fail(4, f"invalid archive: {member.name!r} would replace the destination")
    changes: dict[str, str] = {"name": name}
    if member.issym() and not member.linkname.startswith("/"):
        if _escapes(posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))):
            raise Fail(4, f"invalid archive: invalid symlink {name!r} -> {member.linkname!r}")
    elif member.islnk():
        link = posixpath.normpath(member.linkname).lstrip("/") or "."
        if _escapes(link):
            raise Fail(4, f"invalid archive: invalid hardlink {name!r} -> {member.linkname!r}")
        changes["linkname"] = link
    return member.replace(**changes, deep=False)  # type: ignore[arg-type]


def _make_room(target: str, member: tarfile.TarInfo) -> None:
    """As moby's untar: whatever is at the member's path goes first, unless both are directories.
    tarfile would open an existing FIFO there for writing and wait forever for a reader."""
    try:
        st = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(target)
    elif not member.isdir():
        shutil.rmtree(target)


def make_parents(path: str, uid: int, gid: int) -> None:
    """The builder's COPY destination: missing directories made 0755, owned by the --chown
    identity (moby's MkdirAllAndChownNew); existing ones are left as they are."""
    missing = []
    while not os.path.lexists(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
        os.lchown(directory, uid, gid)


def do_put(path: str, no_overwrite: bool, limits: TarLimits) -> None:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise Fail(2, "not found") from None
    if not stat.S_ISDIR(st.st_mode):
        raise Fail(3, "extraction point is not a directory")
    # Docker's PUT /archive takes identity, gzip, bzip2 or xz (and berth zstd, as for layers).
    with open_stream(decompressed(sys.stdin.buffer), limits) as tar:
        for member in map(within_destination, tar):
            if no_overwrite and _would_replace(path, member):
                what = "directory" if member.isdir() else "non-directory"
                raise Fail(3, f"cannot overwrite {'non-' if member.isdir() else ''}directory "
                              f"{posixpath.join(path, member.name)!r} with {what}")  # fmt: skip
            _make_room(os.path.join(path, member.name), member)
            tar.extract(member, path, numeric_owner=True, filter="fully_trusted")


def main() -> int:
    spec = json.loads(sys.argv[1])
    try:
        if spec.get("pid"):
            try:
                fd = open_container_root(int(spec["pid"]), spec["rootfs"])
            except NotThatContainer as exc:
                print(exc, file=sys.stderr)
                return EXIT_NOT_THAT_CONTAINER
            os.fchdir(fd)
            os.close(fd)
            os.chroot(".")
        else:
            os.chroot(mount_stopped(spec))
        os.chdir("/")
        sys.path[:] = []  # nothing is imported from the container
        path = posixpath.join("/", spec["path"]) if spec["path"] else "/"
        if spec["path"].endswith("/.") and not path.endswith("/."):
            path += "/."
        if spec["mode"] == "stat":
            sys.stdout.write(json.dumps(do_stat(path)))
        elif spec["mode"] == "get":
            do_get(path)
        elif spec["mode"] == "export":
            do_export()
        else:
            if spec.get("make_parents"):
                make_parents(path, *spec.get("parents_owner", (0, 0)))
            do_put(path, bool(spec.get("no_overwrite")), TarLimits(**spec.get("limits", {})))
    except Fail as exc:
        print(exc, file=sys.stderr)
        return exc.code
    # Before OSError: gzip.BadGzipFile is one.
    except (tarfile.TarError, EOFError, zlib.error, LayerError, *DECOMPRESS_ERRORS) as exc:  # type: ignore[misc]
        print(f"invalid archive: {exc}", file=sys.stderr)
        return 4
    except KeyError as exc:  # tarfile: a hardlink to a member the archive does not have
        print(f"invalid archive: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 4
    except RecursionError:  # tarfile's fallback for links it cannot make, on a link cycle
        print("invalid archive: a cycle of links", file=sys.stderr)
        return 4
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            print("not found", file=sys.stderr)
            return 2
        print(f"{exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"{exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
