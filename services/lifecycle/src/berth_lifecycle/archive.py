"""Staging an uploaded archive: stream the outer tar, each regular member into the content ingest.

Nothing is extracted by name: members become staged blobs (hashed, fsync'd temp files in
ingest/) keyed by their normalized path inside the archive, so `../` or absolute member names
are just odd dictionary keys. Symlinks and hardlinks between members (Docker 25+ `docker save`
links <id>/layer.tar to blobs/sha256/<hex>) become aliases. Blocking: runs in a worker thread.
"""

from __future__ import annotations

import posixpath
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, cast

from berth_contracts.errors import InvalidParameter

from berth_lifecycle.content import ContentStore
from berth_lifecycle.images import StagedBlob
from berth_lifecycle.layer_child import DECOMPRESS_ERRORS, LayerError, decompressed

CHUNK = 1 << 20
MAX_METADATA = 16 << 20  # manifest.json / index.json / configs larger than this are refused


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


@dataclass
class StagedArchive:
    blobs: dict[str, StagedBlob] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> StagedBlob | None:
        name = _norm(name)
        for _ in range(16):  # bounded: alias loops are not followed forever
            if name in self.blobs:
                return self.blobs[name]
            if name not in self.aliases:
                return None
            name = self.aliases[name]
        return None

    def require(self, name: str, what: str) -> StagedBlob:
        blob = self.get(name)
        if blob is None:
            raise InvalidParameter(f"invalid archive: {what} {name} not found in the archive")
        return blob

    def read_small(self, name: str, what: str) -> bytes:
        blob = self.require(name, what)
        if blob.writer.size > MAX_METADATA:
            raise InvalidParameter(f"invalid archive: {what} {name} is too large")
        return blob.path.read_bytes() if blob.path.exists() else b""

    def discard(self) -> None:
        """Drop every staged blob that was not committed to the store."""
        for blob in self.blobs.values():
            blob.writer.abort()


def stage(src: Readable, content: ContentStore) -> StagedArchive:
    staged = StagedArchive()
    try:
        # Same detection as for layers: gzip, zstd, bzip2, xz or a plain tar.
        stream = decompressed(cast(BinaryIO, src))
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = _norm(member.name)
                if member.isreg():
                    data = tar.extractfile(member)
                    assert data is not None
                    writer = content.writer()
                    try:
                        while chunk := data.read(CHUNK):
                            writer.write(chunk)
                        digest = writer.finish()
                    except BaseException:
                        writer.abort()
                        raise
                    old = staged.blobs.pop(name, None)
                    if old is not None:
                        old.writer.abort()
                    staged.blobs[name] = StagedBlob(writer=writer, digest=digest)
                elif member.issym():
                    staged.aliases[name] = _norm(posixpath.join(posixpath.dirname(name), member.linkname))
                elif member.islnk():
                    staged.aliases[name] = _norm(member.linkname)
    except (tarfile.TarError, EOFError, zlib.error, LayerError, *DECOMPRESS_ERRORS) as exc:  # type: ignore[misc]
        staged.discard()
        raise InvalidParameter(f"invalid archive: {exc}") from None
    except BaseException:
        staged.discard()
        raise
    return staged


def stage_single(src: Readable, content: ContentStore) -> StagedBlob:
    """The whole body as one staged blob (`docker import`)."""
    writer = content.writer()
    try:
        while chunk := src.read(CHUNK):
            writer.write(chunk)
        digest = writer.finish()
    except BaseException:
        writer.abort()
        raise
    return StagedBlob(writer=writer, digest=digest)
