"""berth's own repositories on disk, laid out as a registry stores them (not cache entries: never
evicted by the quota; only garbage collection removes what no manifest refers to).

    hosted/blobs/sha256/<hex>                               content, verified, read-only
    hosted/repositories/<repo>/_layers/<hex>                a blob this repository holds
    hosted/repositories/<repo>/_manifests/revisions/<hex>   a manifest it holds (text: media type)
    hosted/repositories/<repo>/_manifests/tags/<tag>        text: the tag's manifest digest
    hosted/uploads/<uuid>, <uuid>.repo                      uploads in progress

Order keeps it consistent whatever is interrupted: a blob gets its final name only once its
digest is verified, a repository links it after that, a manifest is stored only when every blob
and child manifest it refers to is in its repository, and a tag is written after its manifest.
Blocking: callers use worker threads. Names reach here checked against the reference grammar.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import uuid
from pathlib import Path

from berth_common import refgrammar

from berth_registry_proxy.cache import OutsideRoot, _inside
from berth_registry_proxy.errors import RegistryError
from berth_registry_proxy.manifests import referenced_digests

CHUNK = 1 << 20


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.repo_dir = root / "repositories"
        self.upload_dir = root / "uploads"
        for d in (self.blob_dir, self.repo_dir, self.upload_dir):
            d.mkdir(parents=True, exist_ok=True)
        # Manifest puts, deletes and garbage collection never interleave.
        self.lock = threading.Lock()

    # --- paths -----------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        if not refgrammar.is_sha256_digest(digest):
            raise RegistryError("DIGEST_INVALID", f"invalid digest {digest[:100]!r}")
        return self.blob_dir / digest[7:]

    def _repo(self, repo: str) -> Path:
        if not refgrammar.is_remote_name(repo):
            raise OutsideRoot(f"invalid repository {repo!r}")
        return _inside(self.repo_dir, self.repo_dir / repo)

    def _layer_link(self, repo: str, digest: str) -> Path:
        return self._repo(repo) / "_layers" / self.blob_path(digest).name

    def _revision(self, repo: str, digest: str) -> Path:
        return self._repo(repo) / "_manifests" / "revisions" / self.blob_path(digest).name

    def _tag(self, repo: str, tag: str) -> Path:
        if not refgrammar.is_tag(tag):
            raise RegistryError("TAG_INVALID", f"invalid tag {tag[:300]!r}")
        return self._repo(repo) / "_manifests" / "tags" / tag

    def _upload(self, upload_id: str) -> Path:
        try:
            return self.upload_dir / str(uuid.UUID(upload_id))
        except ValueError:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404) from None

    # --- blobs -----------------------------------------------------------------------------------

    def has_blob(self, repo: str, digest: str) -> int:
        """The blob's size when `repo` holds it, else -1."""
        if not self._layer_link(repo, digest).exists():
            return -1
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return -1

    def link_blob(self, repo: str, digest: str) -> bool:
        """Link an existing blob into `repo` (a cross-repository mount); False if absent."""
        with self.lock:
            if not self.blob_path(digest).exists():
                return False
            os.utime(self.blob_path(digest))
            _touch(self._layer_link(repo, digest))
            return True

    def start_upload(self, repo: str) -> str:
        upload_id = str(uuid.uuid4())
        path = self._upload(upload_id)
        path.touch()
        path.with_suffix(".repo").write_text(repo)
        return upload_id

    def upload_size(self, repo: str, upload_id: str) -> int:
        path = self._upload(upload_id)
        try:
            if path.with_suffix(".repo").read_text() != repo:
                raise FileNotFoundError
            return path.stat().st_size
        except FileNotFoundError:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404) from None

    def upload_file(self, upload_id: str) -> Path:
        return self._upload(upload_id)

    def cancel_upload(self, upload_id: str) -> None:
        path = self._upload(upload_id)
        path.unlink(missing_ok=True)
        path.with_suffix(".repo").unlink(missing_ok=True)

    def commit_upload(self, repo: str, upload_id: str, digest: str) -> int:
        """Verify the upload's bytes against `digest`, give the blob its name, link it in `repo`.
        A mismatch is DIGEST_INVALID and the upload is gone (the client starts again)."""
        self.upload_size(repo, upload_id)
        path = self._upload(upload_id)
        target = self.blob_path(digest)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
            os.fsync(f.fileno())
        if "sha256:" + h.hexdigest() != digest:
            self.cancel_upload(upload_id)
            raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
        size = path.stat().st_size
        with self.lock:
            os.chmod(path, 0o444)
            if target.exists():
                path.unlink()
                os.utime(target)  # fresh again: garbage collection's grace covers this push
            else:
                os.rename(path, target)
            path.with_suffix(".repo").unlink(missing_ok=True)
            _touch(self._layer_link(repo, digest))
        return size

    # --- manifests -------------------------------------------------------------------------------

    def put_manifest(self, repo: str, ref: str, body: bytes, media: str) -> str:
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if refgrammar.is_sha256_digest(ref) and ref != digest:
            raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
        with self.lock:
            # A referrer's `subject` may name a manifest not pushed (yet): the OCI spec allows it.
            for ref_digest in sorted(referenced_digests(body) - {_subject(body)}):
                if not (self._layer_link(repo, ref_digest).exists() or self._revision(repo, ref_digest).exists()):
                    raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {ref_digest}", 400)
            target = self.blob_path(digest)
            if not target.exists():
                _write_atomic(target, body, 0o444)
            _write_atomic(self._revision(repo, digest), media.encode())
            if not refgrammar.is_sha256_digest(ref):
                _write_atomic(self._tag(repo, ref), digest.encode())
        return digest

    def resolve(self, repo: str, ref: str) -> str:
        """The manifest digest for a tag or digest `repo` holds; MANIFEST_UNKNOWN otherwise."""
        try:
            digest = ref if refgrammar.is_sha256_digest(ref) else self._tag(repo, ref).read_text()
            if self._revision(repo, digest).exists():
                return digest
        except (FileNotFoundError, NotADirectoryError):
            pass
        raise RegistryError("MANIFEST_UNKNOWN", "manifest unknown", 404)

    def get_manifest(self, repo: str, ref: str) -> tuple[str, bytes, str]:
        digest = self.resolve(repo, ref)
        try:
            media = self._revision(repo, digest).read_text()
            return digest, self.blob_path(digest).read_bytes(), media
        except FileNotFoundError:
            raise RegistryError("MANIFEST_UNKNOWN", "manifest unknown", 404) from None

    def delete_manifest(self, repo: str, ref: str) -> str:
        """By digest: the manifest and every tag naming it; by tag: that tag only."""
        with self.lock:
            digest = self.resolve(repo, ref)
            if not refgrammar.is_sha256_digest(ref):
                self._tag(repo, ref).unlink(missing_ok=True)
                return digest
            for tag in self.tags(repo):
                try:
                    if self._tag(repo, tag).read_text() == digest:
                        self._tag(repo, tag).unlink(missing_ok=True)
                except FileNotFoundError:
                    pass
            self._revision(repo, digest).unlink(missing_ok=True)
            return digest

    # --- listings --------------------------------------------------------------------------------

    def tags(self, repo: str) -> list[str]:
        try:
            return sorted(p.name for p in (self._repo(repo) / "_manifests" / "tags").iterdir())
        except FileNotFoundError:
            return []

    def exists(self, repo: str) -> bool:
        return (self._repo(repo) / "_manifests").is_dir() or (self._repo(repo) / "_layers").is_dir()

    def repositories(self) -> list[str]:
        out = []
        for manifests in self.repo_dir.glob("**/_manifests"):
            repo = manifests.parent.relative_to(self.repo_dir).as_posix()
            if refgrammar.is_remote_name(repo) and any((manifests / "revisions").glob("*")):
                out.append(repo)
        return sorted(out)


def _subject(body: bytes) -> str:
    try:
        subject = json.loads(body).get("subject")
    except (ValueError, AttributeError):
        return ""
    return str(subject.get("digest", "")) if isinstance(subject, dict) else ""


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
