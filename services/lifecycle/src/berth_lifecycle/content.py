"""Content store: blobs by digest at blobs/sha256/<hex>, written through ingest/ temp files.

A blob only ever appears under its final name complete and verified: writers stream into a
temp file in ingest/ while hashing, fsync it, check the digest, then rename atomically (and fsync
the directory so the rename survives a crash). Everything here is blocking: callers run it in a
worker thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from berth_contracts.errors import InvalidParameter

_DIGEST_RE = re.compile(r"^sha256:([a-f0-9]{64})$")
CHUNK = 1 << 20


def digest_hex(digest: str) -> str:
    m = _DIGEST_RE.match(digest)
    if not m:
        raise InvalidParameter(f"invalid digest: {digest!r}")
    return m.group(1)


class DigestMismatch(InvalidParameter):
    pass


class IngestWriter:
    """One blob being written: write() chunks, then commit() or abort()."""

    def __init__(self, store: ContentStore, expected: str = "") -> None:
        self._store = store
        self.expected = expected
        fd, name = tempfile.mkstemp(dir=store.ingest_dir, prefix="ingest-")
        self.path = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def rehash(self) -> None:
        """Another process (a confined child) filled the temp file through its fd: hash what
        is on disk, so finish()/commit() verify and name the blob by its real content."""
        self._file.flush()
        digest, size = hashlib.sha256(), 0
        with open(self.path, "rb") as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        self._hash, self.size = digest, size

    def fileno(self) -> int:
        return self._file.fileno()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def finish(self) -> str:
        """Flush and fsync the temp file; verify the expected digest. Returns the digest."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        if self.expected and self.expected != self.digest:
            self.abort()
            raise DigestMismatch(f"digest mismatch: expected {self.expected}, got {self.digest}")
        return self.digest

    def commit(self) -> str:
        """Move the verified blob to its final name (idempotent if it is already there)."""
        digest = self.finish()
        target = self._store.path(digest)
        if target.exists():
            self.abort()
            return digest
        os.chmod(self.path, 0o444)
        os.rename(self.path, target)
        self._store.fsync_dir()
        self._done = True
        return digest

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        if not self._done:
            self.path.unlink(missing_ok=True)
            self._done = True


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)
        # Leftovers of a crash mid-write are never valid blobs: drop them.
        for leftover in self.ingest_dir.iterdir():
            leftover.unlink(missing_ok=True)

    def path(self, digest: str) -> Path:
        return self.blob_dir / digest_hex(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def writer(self, expected: str = "") -> IngestWriter:
        return IngestWriter(self, expected)

    def write_bytes(self, data: bytes, expected: str = "") -> str:
        w = self.writer(expected)
        try:
            w.write(data)
            return w.commit()
        finally:
            w.abort()

    def write_stream(self, src: BinaryIO, expected: str = "") -> str:
        w = self.writer(expected)
        try:
            while chunk := src.read(CHUNK):
                w.write(chunk)
            return w.commit()
        finally:
            w.abort()

    def read_bytes(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def delete(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def fsync_dir(self) -> None:
        fd = os.open(self.blob_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def digests(self) -> list[str]:
        return ["sha256:" + p.name for p in self.blob_dir.iterdir() if _DIGEST_RE.match("sha256:" + p.name)]
