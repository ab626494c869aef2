"""Garbage collection of berth's own repositories with the cache quota: the quota counts the
hosted bytes left after gc; only cache entries are evicted, never a referenced hosted blob."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import pytest
from berth_registry_proxy.cache import Cache
from berth_registry_proxy.errors import RegistryError
from berth_registry_proxy.gc import usage_after_gc
from berth_registry_proxy.storage import Storage


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload(storage: Storage, repo: str, data: bytes) -> str:
    upload_id = storage.start_upload(repo)
    storage.upload_file(upload_id).write_bytes(data)
    storage.commit_upload(repo, upload_id, sha(data))
    return sha(data)


def test_quota_pass_collects_hosted_garbage_and_counts_what_is_left(tmp_path: Path) -> None:
    cache = Cache(tmp_path, quota=3000)
    storage = Storage(tmp_path / "hosted")
    cache.pinned_bytes = functools.partial(usage_after_gc, storage, 0)
    layer, config, orphan = os.urandom(2500), b'{"os":"linux"}', os.urandom(4000)
    for blob in (layer, config, orphan):
        upload(storage, "alice/app", blob)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": sha(config), "size": len(config)},
                           "layers": [{"digest": sha(layer), "size": len(layer)}]}).encode()
    storage.put_manifest("alice/app", "1", manifest, "application/vnd.docker.distribution.manifest.v2+json")
    cached = os.urandom(1000)
    cache.put_manifest(sha(cached), cached, "application/octet-stream")
    victims = cache.evict()
    # The orphan (no manifest refers to it) went first; what is left of the registry (~2.8 kB)
    # plus the cache entry (1 kB) still exceeds 3000 bytes, so the cache entry goes too.
    assert not storage.blob_path(sha(orphan)).exists()
    assert victims == [sha(cached)]
    assert all(storage.blob_path(d).exists() for d in (sha(layer), sha(config), sha(manifest)))
    assert storage.get_manifest("alice/app", "1")[0] == sha(manifest)


def test_manifest_needs_its_blobs_but_not_its_subject(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "hosted")
    config = b'{"os":"linux"}'
    upload(storage, "alice/app", config)
    media = "application/vnd.oci.image.manifest.v1+json"
    missing = sha(b"never pushed")

    def manifest(**extra: object) -> bytes:
        return json.dumps({"schemaVersion": 2, "mediaType": media, "config": {"digest": sha(config), "size": 14},
                           "layers": [], **extra}).encode()

    with pytest.raises(RegistryError) as err:
        storage.put_manifest("alice/app", "x", manifest(layers=[{"digest": missing, "size": 1}]), media)
    assert err.value.code == "MANIFEST_BLOB_UNKNOWN"
    # A blob another repository holds is not this one's (until mounted).
    upload(storage, "alice/other", b"layer")
    with pytest.raises(RegistryError):
        storage.put_manifest("alice/app", "x", manifest(layers=[{"digest": sha(b"layer"), "size": 5}]), media)
    assert storage.tags("alice/app") == []
    referrer = manifest(subject={"mediaType": media, "digest": missing, "size": 1})
    assert storage.put_manifest("alice/app", "ref", referrer, media) == sha(referrer)
