"""COPY --from: the sources come out of another stage's image (or any image), through a
container made from it and the archive API's GET (what `docker cp` reads), into a staging
directory of this build. From there they are hashed and copied like context files (moby
hashes them from the mounted image the same way)."""

from __future__ import annotations

import os
import posixpath
import tempfile

from anyio import to_thread

from berth_builder import transfer
from berth_builder.context import extract_context
from berth_builder.contextindex import ContextIndex, index_archive
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


async def fetch(url: str, staging: str, number: int) -> tuple[str, ContextIndex]:
    """One source's tar (its root entry is the path's base name) extracted into
    staging/<number>/; returns that directory and the tar's index (its sums)."""
    root = os.path.join(staging, str(number))
    os.mkdir(root, 0o700)
    tar_path = os.path.join(staging, f"{number}.tar")
    await transfer.post_to_file(url, tar_path)

    def extract() -> ContextIndex:
        index = index_archive(tar_path)
        with open(tar_path, "rb") as f:
            extract_context(f, root)
        os.unlink(tar_path)  # the sums are in the index, the files in root
        return index

    return root, await to_thread.run_sync(extract)


def sources_in(index: ContextIndex, pattern: str) -> list[CopySource]:
    """The fetched source(s) as CopySources relative to their directory (hashed as for a
    context); a wildcard may match several, or none."""
    return ContextHasher(index).sources(pattern, allow_wildcards=contains_wildcards(pattern))
