"""Garbage collection of berth's own repositories: mark every blob a stored manifest refers to,
sweep the rest. Runs after a manifest DELETE, at start, and with each quota pass of the cache
(which counts the bytes left here against BERTH_REGISTRY_PROXY_QUOTA: only cache entries are
evicted to make room, never a blob a manifest here refers to).

A push uploads its blobs before its manifest, so blobs (and abandoned uploads) younger than
`grace` seconds are kept: a push in progress never loses a layer it already sent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from berth_registry_proxy.manifests import referenced_digests
from berth_registry_proxy.storage import Storage

log = logging.getLogger(__name__)


@dataclass
class Collected:
    blobs: int = 0
    bytes: int = 0
    links: int = 0
    uploads: int = 0


def collect(storage: Storage, grace: float) -> Collected:
    """Blocking: run in a worker thread."""
    done = Collected()
    cutoff = time.time() - grace
    with storage.lock:
        marked: set[str] = set()
        for revision in storage.repo_dir.glob("**/_manifests/revisions/*"):
            digest = "sha256:" + revision.name
            if revision.name.startswith(".tmp-"):
                continue
            try:
                body = storage.blob_path(digest).read_bytes()
            except (FileNotFoundError, ValueError):
                continue
            marked.add(digest)
            marked |= referenced_digests(body)
        for blob in storage.blob_dir.iterdir():
            digest = "sha256:" + blob.name
            try:
                st = blob.stat()
            except FileNotFoundError:
                continue
            if digest in marked or st.st_mtime > cutoff or blob.name.startswith(".tmp-"):
                continue
            blob.unlink(missing_ok=True)
            done.blobs += 1
            done.bytes += st.st_size
        # A repository's link to a blob that is gone would make a later manifest PUT pass its check.
        for link in storage.repo_dir.glob("**/_layers/*"):
            if not (storage.blob_dir / link.name).exists():
                link.unlink(missing_ok=True)
                done.links += 1
        for upload in storage.upload_dir.iterdir():
            try:
                if upload.stat().st_mtime < cutoff:
                    upload.unlink(missing_ok=True)
                    done.uploads += 1
            except FileNotFoundError:
                continue
    if done.blobs or done.uploads:
        log.info("registry gc: %d blobs (%d bytes), %d links, %d abandoned uploads removed",
                 done.blobs, done.bytes, done.links, done.uploads)
    return done


def usage_after_gc(storage: Storage, grace: float) -> int:
    """Collect, then the bytes the repositories still hold (what the cache quota counts)."""
    collect(storage, grace)
    total = 0
    for blob in storage.blob_dir.iterdir():
        try:
            total += blob.stat().st_size
        except FileNotFoundError:
            continue
    return total
