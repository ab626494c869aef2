"""The on-disk cache: verified commits only, and eviction that never leaves a tag dangling."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anyio
import pytest
from berth_registry_proxy.cache import Cache, DigestMismatch
from berth_registry_proxy.config import ProxyConfig
from berth_registry_proxy.fetches import Fetches
from berth_registry_proxy.upstream import Upstream


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_only_verified_content_is_committed(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    ing = cache.ingest(sha(b"right"))
    ing.write(b"wrong")
    with pytest.raises(DigestMismatch):
        ing.commit()
    assert not cache.has(sha(b"right"))
    assert list(cache.ingest_dir.iterdir()) == []
    leftover = cache.ingest(sha(b"x"))
    leftover.write(b"x")  # a crash mid-download: never an entry, gone at the next start
    assert list(Cache(tmp_path).ingest_dir.iterdir()) == []


def test_eviction_drops_tags_with_their_manifest(tmp_path: Path) -> None:
    cache = Cache(tmp_path, quota=3000)
    manifest = b"{" + b" " * 998 + b"}"
    cache.put_manifest(sha(manifest), manifest, "application/vnd.oci.image.manifest.v1+json")
    cache.put_tag("r.test", "a/b", "1", sha(manifest))
    old = time_back = 1_000_000_000  # older than anything else here
    os.utime(cache.blob_path(sha(manifest)), (old, old))
    blobs = [bytes([i]) * 1000 for i in range(3)]
    for i, b in enumerate(blobs):
        ing = cache.ingest(sha(b))
        ing.write(b)
        ing.commit()
        os.utime(cache.blob_path(sha(b)), (time_back + 10 + i, time_back + 10 + i))
    assert cache.get_tag("r.test", "a/b", "1") is not None
    victims = cache.evict(keep={sha(blobs[0])})
    assert sha(manifest) in victims and sha(blobs[0]) not in victims
    assert cache.get_tag("r.test", "a/b", "1") is None
    assert not any((cache.tag_dir / "r.test").rglob("*.json"))
    assert cache.get_manifest(sha(manifest)) is None


def test_no_second_fetch_for_a_blob_cached_meanwhile(tmp_path: Path) -> None:
    """A client that found the blob missing (in a worker thread) asks for its fetch after that
    fetch ended: the cache answers, no second upstream GET starts."""
    cache = Cache(tmp_path)
    blob = b"layer"
    ing = cache.ingest(sha(blob))
    ing.write(blob)
    ing.commit()  # what the ended fetch did

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            fetches = Fetches(cache, Upstream(ProxyConfig(data_dir=tmp_path)), tg, max_blob=1 << 20)
            assert fetches.get("r.test", "a/b", sha(blob)) is None
            assert fetches.upstream_fetches == 0 and not fetches.active

    anyio.run(main)


def test_tag_files_never_stand_where_a_repository_goes(tmp_path: Path) -> None:
    """Repository `a` tag `b`, then repository `a/b.json`: on main the second was a 500
    (tags/<host>/a/b.json was a file). Old-layout tag files are dropped at start."""
    cache = Cache(tmp_path)
    manifest = b"{}"
    digest = sha(manifest)
    cache.put_manifest(digest, manifest, "application/vnd.oci.image.manifest.v1+json")
    cache.put_tag("r.test", "a", "b", digest)
    cache.put_tag("r.test", "a/b.json", "x", digest)
    assert cache.get_tag("r.test", "a", "b") is not None and cache.get_tag("r.test", "a/b.json", "x") is not None
    old = cache.tag_dir / "r.test" / "c" / "d.json"  # the layout before _tags/
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    cache = Cache(tmp_path, quota=1)
    assert not old.exists() and cache.get_tag("r.test", "a", "b") is not None
    assert digest in cache.evict()  # the tag walk passes the directory a/b.json by
    assert not any(cache.tag_dir.glob("**/_tags/*.json"))
