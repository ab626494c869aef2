"""The on-disk cache, content-addressed: blobs/sha256/<hex>, a media type beside each manifest,
tags/<host>/<repo>/_tags/<tag>.json → {digest, checked}, and links/<host>/<repo>/_sha256/<hex>:
the digests a repository is known to hold (a blob is only served to a repository linked to
it). Blocking: callers use worker threads.

Hosts, repositories, tags and digests reach this module already checked against the reference
grammar (names.py); every path built from them is checked once more to stay under the root.
`_tags`/`_sha256` cannot collide with a repository part (path components start with [a-z0-9]).

Only verified, complete content gets a final name (ingest temp file, digest check, fsync,
rename). Tags are written after the manifest they point at; eviction removes tags pointing at
a manifest before the manifest, so metadata never points at missing bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from berth_common import refgrammar


class DigestMismatch(Exception):
    pass


class OutsideRoot(ValueError):
    """A cache path that would leave the cache root (never expected once names are checked)."""


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
        self.link_dir = root / "links"
        self.quota = quota
        # Bytes outside the cache that the quota counts too (berth's own registry, after its gc).
        self.pinned_bytes: Callable[[], int] = lambda: 0
        for d in (self.blob_dir, self.ingest_dir, self.tag_dir, self.link_dir):
            d.mkdir(parents=True, exist_ok=True)
        # Partial downloads of a previous run are never cache entries.
        for leftover in self.ingest_dir.iterdir():
            leftover.unlink(missing_ok=True)
        # Tag files of the layout before `_tags/` (tags/<host>/<repo>/<tag>.json) could stand
        # where a repository's directory goes now: they are only a cache, drop them.
        for old in self.tag_dir.rglob("*.json"):
            if old.parent.name != "_tags" and old.is_file():
                old.unlink(missing_ok=True)

    def blob_path(self, digest: str) -> Path:
        if not refgrammar.is_sha256_digest(digest):
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

    def _repo_dir(self, top: Path, host: str, repo: str) -> Path:
        if not refgrammar.is_domain(host) or not refgrammar.is_remote_name(repo):
            raise OutsideRoot(f"invalid cache key {host!r} {repo!r}")
        # ':' never appears in a checked host otherwise, so "_" keeps host keys distinct.
        return _inside(top, top / host.replace(":", "_") / repo)

    def _tag_path(self, host: str, repo: str, tag: str) -> Path:
        if not refgrammar.is_tag(tag):
            raise OutsideRoot(f"invalid tag {tag!r}")
        return _inside(self.tag_dir, self._repo_dir(self.tag_dir, host, repo) / "_tags" / f"{tag}.json")

    def get_tag(self, host: str, repo: str, tag: str) -> tuple[str, float] | None:
        try:
            doc = json.loads(self._tag_path(host, repo, tag).read_text())
        except (FileNotFoundError, ValueError):
            return None
        digest = str(doc.get("digest", ""))
        if not refgrammar.is_sha256_digest(digest) or not self.has(digest):
            return None
        return digest, float(doc.get("checked", 0))

    def put_tag(self, host: str, repo: str, tag: str, digest: str) -> None:
        path = self._tag_path(host, repo, tag)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_atomic(path, json.dumps({"digest": digest, "checked": time.time()}).encode())

    # --- which repository holds which digest ----------------------------------------------------

    def _link_path(self, host: str, repo: str, digest: str) -> Path:
        self.blob_path(digest)  # checks the digest
        return _inside(self.link_dir, self._repo_dir(self.link_dir, host, repo) / "_sha256" / digest[7:])

    def has_link(self, host: str, repo: str, digest: str) -> bool:
        return self._link_path(host, repo, digest).exists()

    def link(self, host: str, repo: str, digests: list[str] | set[str]) -> None:
        """Record that the upstream's `repo` holds these digests (it served or listed them)."""
        for digest in digests:
            path = self._link_path(host, repo, digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

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
        total = self.pinned_bytes()
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
        for tag_file in self.tag_dir.glob("**/_tags/*.json"):  # a repository may end in ".json"
            try:
                if json.loads(tag_file.read_text()).get("digest") in doomed:
                    tag_file.unlink(missing_ok=True)
            except (OSError, ValueError):
                tag_file.unlink(missing_ok=True)
        for digest in victims:
            self.blob_path(digest).unlink(missing_ok=True)
            self._type_path(digest).unlink(missing_ok=True)
        return victims


def _inside(root: Path, path: Path) -> Path:
    """`path` if it stays under `root` once `..` and symbolic links are resolved."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise OutsideRoot(f"{path} is outside {root}")
    return path
