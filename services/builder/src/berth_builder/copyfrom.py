"""COPY --from: the sources come out of another stage's image (or any image), through a
container made from it and the archive API's GET (what `docker cp` reads), into a staging
directory of this build. From there they are hashed and copied like context files (moby
hashes them from the mounted image the same way)."""

from __future__ import annotations

import functools
import grp
import hashlib
import os
import posixpath
import pwd
import tempfile
from collections.abc import Callable
from typing import Any

from anyio import to_thread

from berth_builder import transfer
from berth_builder.context import extract_context, tarsum_v1
from berth_builder.contextindex import ROOT, ContextIndex, index_archive
from berth_builder.copysources import ContextHasher, CopySource
from berth_builder.gomatch import contains_wildcards


def staging_dir(work: str) -> str:
    return tempfile.mkdtemp(dir=work, prefix="from-")


def split_source(src: str) -> tuple[str, str]:
    """What to fetch from the image for a source, and the source inside what is fetched (the
    archive API names its top entry after the path's last element, `.` for `/`):
    `/usr/bin/x` -> (`/usr/bin/x`, `x`); `/app/*.txt` -> (`/app`, `app/*.txt`), the deepest
    directory without wildcards being fetched and matched inside (moby matches in the image's
    filesystem alike); `/` -> (`/`, `.`)."""
    path = posixpath.normpath(posixpath.join("/", src))
    parts = [p for p in path.split("/") if p]
    first = next((i for i, p in enumerate(parts) if contains_wildcards(p)), len(parts))
    if first == len(parts):
        return path, parts[-1] if parts else "."
    fetch = "/" + "/".join(parts[:first])
    top = parts[first - 1] if first else ""
    return fetch, "/".join([top, *parts[first:]] if top else parts[first:])


async def fetch(url: str, staging: str, number: int, fetched: str) -> tuple[str, ContextIndex]:
    """One source's tar (the image's path `fetched`; the tar's root entry is its base name)
    extracted into staging/<number>/; returns that directory and the tar's index, with moby's
    sums of image files (image_sums)."""
    root = os.path.join(staging, str(number))
    os.mkdir(root, 0o700)
    tar_path = os.path.join(staging, f"{number}.tar")
    await transfer.post_to_file(url, tar_path)

    def extract() -> ContextIndex:
        index = index_archive(tar_path, summed=False)  # an image's files are summed otherwise
        index.sums = image_sums(index, fetched)
        with open(tar_path, "rb") as f:
            extract_context(f, root)
        os.unlink(tar_path)  # the sums are in the index, the files in root
        return index

    return root, await to_thread.run_sync(extract)


_TYPE_BITS = {"file": 0o100000, "dir": 0o040000, "symlink": 0o120000}  # Go 1.8's c_IS* bits
_TYPEFLAGS = {"file": "0", "dir": "5", "symlink": "2"}


def image_sums(index: ContextIndex, fetched: str) -> dict[str, str]:
    """moby's lazySource sums of files in an image (remotecontext/lazycontext.go, filehash.go):
    tarsum v1 of a header made from the file as the daemon stats it (archive.FileInfoHeader),
    named by its path in the image, the mode with Go's file type bits, user and group names
    looked up on the daemon's host as Go's tar does, then the content. (Devices, FIFOs and
    security.capability, which the archive API's tar does not carry, are left out.)"""
    base = posixpath.dirname(fetched.rstrip("/")).lstrip("/")  # the image directory of the top entry
    sums: dict[str, str] = {}
    with open(index.tar_path, "rb") as archive:
        for path, entry in index.entries():
            if path == ROOT:
                continue
            name = posixpath.join(base, path) if base else path
            size = entry.size if entry.kind == "file" else 0
            fields = [
                ("name", name + "/" if entry.kind == "dir" else name),
                ("mode", str(entry.mode | _TYPE_BITS[entry.kind])),
                ("uid", str(entry.uid)), ("gid", str(entry.gid)), ("size", str(size)),
                ("typeflag", _TYPEFLAGS[entry.kind]), ("linkname", entry.linkname),
                ("uname", _owner_name(pwd.getpwuid, entry.uid)), ("gname", _owner_name(grp.getgrgid, entry.gid)),
                ("devmajor", "0"), ("devminor", "0"),
            ]  # fmt: skip
            digest = hashlib.sha256(tarsum_v1(fields))
            done = 0
            while done < size:
                chunk = os.pread(archive.fileno(), min(1 << 20, size - done), entry.offset + done)
                if not chunk:
                    break
                digest.update(chunk)
                done += len(chunk)
            sums[path] = digest.hexdigest()
    return sums


@functools.cache
def _owner_name(lookup: Callable[[int], Any], number: int) -> str:
    """Go's archive/tar user and group names: looked up on this host, "" when unknown."""
    try:
        return str(lookup(number)[0])  # pw_name, gr_name
    except KeyError:
        return ""


def sources_in(index: ContextIndex, pattern: str) -> list[CopySource]:
    """The fetched source(s) as CopySources relative to their directory (hashed as for a
    context); a wildcard may match several, or none."""
    return ContextHasher(index).sources(pattern, allow_wildcards=contains_wildcards(pattern))
