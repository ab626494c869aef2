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
from berth_builder.context import ContextError, extract_context
from berth_builder.contextindex import ContextIndex, index_archive
from berth_builder.copysources import ContextHasher, CopySource
from berth_builder.gomatch import contains_wildcards


def staging_dir(work: str) -> str:
    return tempfile.mkdtemp(dir=work, prefix="from-")


def check_source(src: str) -> str:
    if contains_wildcards(src):
        raise ContextError("berth's builder does not take wildcards in COPY --from sources yet")
    path = posixpath.normpath(posixpath.join("/", src))
    if path == "/":
        raise ContextError("berth's builder does not COPY --from the whole root filesystem yet")
    return path


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


def source_in(index: ContextIndex, src_path: str) -> CopySource:
    """The fetched source as a CopySource relative to its directory (its hash as for a context)."""
    [found] = ContextHasher(index).sources(posixpath.basename(src_path), allow_wildcards=False)
    return found
