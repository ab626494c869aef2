"""The on-disk cache, content-addressed: blobs/sha256/<hex>, a media type beside each manifest,
tags/<host>/<repo>/<tag>.json → {digest, checked}. Blocking: callers use worker threads.

Only verified, complete content gets a final name (ingest temp file, digest check, fsync,
rename). Tags are written after the manifest they point at; eviction removes tags pointing at
a manifest before the manifest, so metadata never points at missing bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path

DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


class DigestMismatch(Exception):
    pass


class Ingest:
    """One download in progress: write(), then commit() (verifies) or abort()."""

    def __init__(self, cache: Cache, expected: str) -> None:
        self.cache = cache
        self.expected = expected
        fd, name = tempfile.mkstemp(dir=cache.ingest_dir, prefix="in-")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()  # readers follow the file while it grows
        self._hash.update(data)
        self.size += len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self) -> Path:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if self.digest != self.expected:
            self.abort()
            raise DigestMismatch(f"digest mismatch: expected {self.expected}, got {self.digest}")
        target = self.cache.blob_path(self.expected)
        os.chmod(self.path, 0o444)
        os.rename(self.path, target)
        return target

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class Cache:
    def __init__(self, root: Path, quota: int = 0) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        self.tag_dir = root / "tags"
        self.quota = quota
        for d in (self.blob_dir, self.ingest_dir, self.tag_dir):
            d.mkdir(parents=True, exist_ok=True)
        # Partial downloads of a previous run are never cache entries.
        for leftover in self.ingest_dir.iterdir():
            leftover.unlink(missing_ok=True)

    def blob_path(self, digest: str) -> Path:
        if not DIGEST_RE.match(digest):
            raise ValueError(f"invalid digest {digest!r}")
        return self.blob_dir / digest.removeprefix("sha256:")

    def has(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def ingest(self, expected: str) -> Ingest:
        return Ingest(self, expected)

    # --- manifests -------------------------------------------------------------------------------

    def put_manifest(self, digest: str, body: bytes, media_type: str) -> None:
        ing = self.ingest(digest)
        try:
            ing.write(body)
            ing.commit()
        finally:
            ing.abort()
        self._write_atomic(self._type_path(digest), media_type.encode())

    def get_manifest(self, digest: str) -> tuple[bytes, str] | None:
        try:
            body = self.blob_path(digest).read_bytes()
            media = self._type_path(digest).read_text()
        except FileNotFoundError:
            return None
        return body, media

    def _type_path(self, digest: str) -> Path:
        return self.blob_path(digest).with_suffix(".type")

    # --- tags ------------------------------------------------------------------------------------

    def _tag_path(self, host: str, repo: str, tag: str) -> Path:
        return self.tag_dir / host.replace(":", "_") / repo / f"{tag}.json"

    def get_tag(self, host: str, repo: str, tag: str) -> tuple[str, float] | None:
        try:
            doc = json.loads(self._tag_path(host, repo, tag).read_text())
        except (FileNotFoundError, ValueError):
            return None
        digest = str(doc.get("digest", ""))
        if not DIGEST_RE.match(digest) or not self.has(digest):
            return None
        return digest, float(doc.get("checked", 0))

    def put_tag(self, host: str, repo: str, tag: str, digest: str) -> None:
        path = self._tag_path(host, repo, tag)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_atomic(path, json.dumps({"digest": digest, "checked": time.time()}).encode())

    def _write_atomic(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    # --- eviction --------------------------------------------------------------------------------

    def evict(self, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Delete least recently used blobs until under the quota; tags that point at an evicted
        manifest go first. `keep`: digests in use by downloads right now."""
        if self.quota <= 0:
            return []
        entries = []
        total = 0
        for p in self.blob_dir.iterdir():
            if p.suffix:
                continue
            st = p.stat()
            total += st.st_size
            entries.append((st.st_atime, st.st_size, "sha256:" + p.name))
        if total <= self.quota:
            return []
        entries.sort()
        victims: list[str] = []
        for _, size, digest in entries:
            if total <= self.quota:
                break
            if digest in keep:
                continue
            victims.append(digest)
            total -= size
        doomed = set(victims)
        for tag_file in self.tag_dir.rglob("*.json"):
            try:
                if json.loads(tag_file.read_text()).get("digest") in doomed:
                    tag_file.unlink(missing_ok=True)
            except (OSError, ValueError):
                tag_file.unlink(missing_ok=True)
        for digest in victims:
            self.blob_path(digest).unlink(missing_ok=True)
            self._type_path(digest).unlink(missing_ok=True)
        return victims
