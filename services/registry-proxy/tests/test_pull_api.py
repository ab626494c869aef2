"""The proxy's pull API against a real upstream registry."""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from proxy_harness import ProxyRun

ACCEPT = "application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json"


def get(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, headers={"Accept": ACCEPT, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_base_and_manifest_exact_bytes(proxy: ProxyRun) -> None:
    status, headers, _ = get(f"{proxy.url}/v2/")
    assert status == 200 and headers["Docker-Distribution-API-Version"] == "registry/2.0"
    bb = proxy.seeded.busybox
    for path in (f"{proxy.host}/library/busybox/manifests/1", "library/busybox/manifests/1",
                 "busybox/manifests/1", f"library/busybox/manifests/1?ns={proxy.host}"):
        status, headers, body = get(f"{proxy.url}/v2/{path}")
        assert status == 200, (path, body)
        assert sha(body) == bb.digest == headers["Docker-Content-Digest"]
        assert headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"
    status, headers, body = get(f"{proxy.url}/v2/busybox/manifests/1", "HEAD")
    assert status == 200 and body == b""
    assert headers["Docker-Content-Digest"] == bb.digest and int(headers["Content-Length"]) > 0
    # by digest, from the cache
    status, headers, body = get(f"{proxy.url}/v2/busybox/manifests/{bb.digest}")
    assert status == 200 and sha(body) == bb.digest


def test_blob_get_head_range(proxy: ProxyRun) -> None:
    layer = proxy.seeded.busybox.layer_digests[0]
    url = f"{proxy.url}/v2/busybox/blobs/{layer}"
    status, headers, head = get(url, "HEAD")
    assert status == 200 and headers["Docker-Content-Digest"] == layer
    size = int(headers["Content-Length"])
    status, headers, body = get(url)
    assert status == 200 and sha(body) == layer and len(body) == size
    status, headers, part = get(url, headers={"Range": "bytes=10-19"})
    assert status == 206 and part == body[10:20]


def test_errors_in_spec_json(proxy: ProxyRun) -> None:
    status, _, body = get(f"{proxy.url}/v2/busybox/manifests/nope")
    assert status == 404 and json.loads(body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    status, _, body = get(f"{proxy.url}/v2/busybox/blobs/uploads/", "POST")
    assert status == 405 and json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
    status, _, body = get(f"{proxy.url}/v2/busybox/manifests/1", "PUT")
    assert status == 405


def test_tags_list(proxy: ProxyRun) -> None:
    status, _, body = get(f"{proxy.url}/v2/library/multiarch/tags/list")
    assert status == 200 and sorted(json.loads(body)["tags"]) == ["1", "amd64", "arm64"]


def test_concurrent_clients_one_upstream_fetch(proxy: ProxyRun) -> None:
    layers = proxy.seeded.multilayer.layer_digests
    urls = [f"{proxy.url}/v2/library/multilayer/blobs/{d}" for d in layers] * 20
    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(get, urls))
    for url, (status, _, body) in zip(urls, results, strict=True):
        assert status == 200 and sha(body) == url.rsplit("/", 1)[1]
    for d in layers:
        assert proxy.front.blob_gets(d) == 1


def test_corrupt_upstream_never_cached(proxy: ProxyRun) -> None:
    layer = proxy.seeded.busybox.layer_digests[0]
    url = f"{proxy.url}/v2/busybox/blobs/{layer}"
    proxy.front.mode = "corrupt"
    req = urllib.request.Request(url)
    with pytest.raises((http.client.HTTPException, OSError)):
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()  # cut before the last byte: IncompleteRead
    assert not (proxy.data / "blobs" / "sha256" / layer.removeprefix("sha256:")).exists()
    proxy.front.mode = "ok"
    status, _, body = get(url)
    assert status == 200 and sha(body) == layer


def test_upstream_down_and_429(proxy: ProxyRun) -> None:
    bb = proxy.seeded.busybox
    assert get(f"{proxy.url}/v2/busybox/manifests/1")[0] == 200
    proxy.front.mode = "429"
    status, headers, body = get(f"{proxy.url}/v2/busybox/manifests/1")
    assert status == 200 and sha(body) == bb.digest and "Warning" in headers
    status, headers, _ = get(f"{proxy.url}/v2/library/multilayer/manifests/1")
    assert status == 429 and headers.get("Retry-After") == "30"
    proxy.front.mode = "ok"
    proxy.front.stop()
    status, headers, body = get(f"{proxy.url}/v2/busybox/manifests/1")
    assert status == 200 and sha(body) == bb.digest and "Warning" in headers
    status, _, body = get(f"{proxy.url}/v2/library/multilayer/manifests/1")
    assert status == 503, body
    proxy.front.start()


def test_download_completes_into_the_cache_after_the_client_left(proxy: ProxyRun) -> None:
    layer = proxy.seeded.multilayer.layer_digests[0]  # the busybox layer, ~1 MB
    proxy.front.mode = "slow"
    with urllib.request.urlopen(f"{proxy.url}/v2/library/multilayer/blobs/{layer}", timeout=30) as resp:
        assert len(resp.read(10)) == 10  # then leave
    cached = proxy.data / "blobs" / "sha256" / layer.removeprefix("sha256:")
    deadline = time.monotonic() + 60
    while not cached.exists():
        assert time.monotonic() < deadline, "the download did not complete into the cache"
        time.sleep(0.1)
    assert sha(cached.read_bytes()) == layer
    proxy.front.mode = "ok"
    status, _, body = get(f"{proxy.url}/v2/library/multilayer/blobs/{layer}")
    assert status == 200 and sha(body) == layer
    assert proxy.front.blob_gets(layer) == 1
