"""Requests from a hostile local user, and a hostile upstream (issue 15, finding 2).

`evil` is a registry on loopback that answers any path ending in /v2/... (what a local user
can run): on main, `?ns=<evil>/../..` made the proxy write tag files outside its cache and
over Docker Hub's tags, and a blob cached for one repository was served to any other.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from berth_kit.testing import nats_server
from berth_testsupport import registry as tr
from proxy_harness import run_proxy
from test_pull_api import get
from yarl import URL


@dataclass
class Hostile:
    url: str
    hub: tr.Front  # plays Docker Hub
    evil: tr.Front  # a local user's registry
    seeded: tr.Seeded
    outer: Path  # the cache is outer/a/b/cache: anything else under outer escaped it

    @property
    def evil_host(self) -> str:
        return f"127.0.0.1:{self.evil.port}"

    def escaped(self) -> list[str]:
        return sorted(
            str(p.relative_to(self.outer)) for p in self.outer.rglob("*") if not _in_cache(p, self.outer)
        )


def _in_cache(p: Path, outer: Path) -> bool:
    cache = outer / "a" / "b" / "cache"
    return p in (outer / "a", outer / "a" / "b") or p == cache or cache in p.parents


def _after_v2(path: str) -> str:
    return path[path.index("/v2/") :] if "/v2/" in path else path


@pytest.fixture(scope="module")
def hostile(upstream: tuple[str, tr.Seeded]) -> Iterator[Hostile]:
    url, seeded = upstream
    with (
        nats_server() as nats,
        tempfile.TemporaryDirectory(prefix="berth-rp-hostile-") as tmp,
        tr.Front(url) as hub,
        tr.Front(url) as evil,
    ):
        outer = Path(tmp)
        cache = outer / "a" / "b" / "cache"
        cache.mkdir(parents=True)
        env = {
            "BERTH_NATS_URL": nats,
            "BERTH_REGISTRY_PROXY_DATA": str(cache),
            "BERTH_REGISTRY_PROXY_DOCKER_HUB": hub.url,
            "BERTH_REGISTRY_PROXY_TAG_TTL": "600",  # a poisoned tag would be served for 10 min
            "BERTH_REGISTRY_PROXY_CONNECT_TIMEOUT": "3",
        }
        with run_proxy(env) as proxy_url:
            yield Hostile(proxy_url, hub, evil, seeded, outer)


def _wait(ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _error(body: bytes) -> dict[str, object]:
    doc = json.loads(body)
    assert isinstance(doc["errors"], list) and len(doc["errors"]) == 1, doc
    err: dict[str, object] = doc["errors"][0]
    return err


def test_ns_traversal_writes_nothing_outside_the_cache(hostile: Hostile) -> None:
    """The report's `ns=127.0.0.1:18080/../../..`: a 400 before any upstream is asked."""
    hostile.evil.rewrite = _after_v2
    before = sum(hostile.evil.counts.values())
    ns = f"{hostile.evil_host}/../../../../escaped"
    status, _, body = get(f"{hostile.url}/v2/library/busybox/manifests/1?{urllib.parse.urlencode({'ns': ns})}")
    assert hostile.escaped() == []
    assert status == 400, body
    assert _error(body)["code"] == "NAME_INVALID"
    assert sum(hostile.evil.counts.values()) == before


@pytest.mark.parametrize(
    "ns",
    [
        "{evil}/..", "{evil}/x", "../{evil}", "user:pw@{evil}", "http://{evil}", "{evil}?x=1", "{evil}#f",
        "127.0.0.1:0", "127.0.0.1:65536", "a..b", "-a.b", "a.b-", "[zz]:5000", "[]", "{evil}\n",
        "ex\u00e4mple.com", "127.0.0.1:5000\\..", "%2e%2e", ".", "..", "a" * 300 + ".com",
    ],
)
def test_hosts_outside_the_grammar_are_refused(hostile: Hostile, ns: str) -> None:
    ns = ns.replace("{evil}", hostile.evil_host)
    before = sum(hostile.evil.counts.values())
    status, _, body = get(f"{hostile.url}/v2/library/busybox/manifests/1?{urllib.parse.urlencode({'ns': ns})}")
    assert status == 400, (ns, body)
    assert _error(body)["code"] == "NAME_INVALID"
    assert sum(hostile.evil.counts.values()) == before
    assert hostile.escaped() == []


def test_docker_hub_tags_cannot_be_written_through_another_host(hostile: Hostile) -> None:
    """On main `ns=<evil>/../docker.io` stored evil's manifest as Docker Hub's busybox:1."""
    multilayer = hostile.seeded.multilayer.digest

    def evil_paths(path: str) -> str:
        return _after_v2(path).replace("library/busybox/manifests/1", "library/multilayer/manifests/1")

    hostile.evil.rewrite = evil_paths
    answers = []
    for ns in (f"{hostile.evil_host}/../docker.io", f"{hostile.evil_host}/../../tags/docker.io"):
        answers.append(get(f"{hostile.url}/v2/library/busybox/manifests/1?{urllib.parse.urlencode({'ns': ns})}")[0])
    status, headers, _ = get(f"{hostile.url}/v2/library/busybox/manifests/1")  # Docker Hub's busybox
    assert status == 200
    assert headers["Docker-Content-Digest"] == hostile.seeded.busybox.digest != multilayer
    assert answers == [400, 400]
    # The evil host's own answers stay under its own name.
    status, headers, _ = get(f"{hostile.url}/v2/{hostile.evil_host}/library/busybox/manifests/1")
    assert status == 200 and headers["Docker-Content-Digest"] == multilayer
    status, headers, _ = get(f"{hostile.url}/v2/library/busybox/manifests/1")
    assert headers["Docker-Content-Digest"] == hostile.seeded.busybox.digest


def test_blob_and_manifest_served_only_to_a_repository_holding_them(hostile: Hostile) -> None:
    bb = hostile.seeded.busybox
    layer = bb.layer_digests[0]
    status, _, _ = get(f"{hostile.url}/v2/library/busybox/blobs/{layer}")
    assert status == 200  # cached now, for library/busybox
    status, _, _ = get(f"{hostile.url}/v2/library/busybox/manifests/1")
    assert status == 200
    for repo in ("library/multilayer", "library/nothere"):  # neither holds them upstream
        for method in ("GET", "HEAD"):
            status, _, body = get(f"{hostile.url}/v2/{repo}/blobs/{layer}", method)
            assert status == 404, (repo, method, body)
        status, _, body = get(f"{hostile.url}/v2/{repo}/blobs/{layer}")
        assert _error(body)["code"] == "BLOB_UNKNOWN"
        status, _, body = get(f"{hostile.url}/v2/{repo}/manifests/{bb.digest}")
        assert status == 404 and _error(body)["code"] == "MANIFEST_UNKNOWN", body
    # library/multiarch holds the same layer upstream: served from the cache after a HEAD.
    gets = hostile.hub.blob_gets(layer)
    status, _, body = get(f"{hostile.url}/v2/library/multiarch/blobs/{layer}")
    assert status == 200 and tr._sha(body) == layer
    assert hostile.hub.blob_gets(layer) == gets
    # Now linked: served again without asking.
    heads = sum(n for k, n in hostile.hub.counts.items() if k.startswith("HEAD ") and k.endswith(layer))
    assert get(f"{hostile.url}/v2/library/multiarch/blobs/{layer}")[0] == 200
    assert heads == sum(n for k, n in hostile.hub.counts.items() if k.startswith("HEAD ") and k.endswith(layer))


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("bare302", ["without a usable Location"]),  # the 302's body (a manifest) is not served
        ("ftp302", ["ftp://127.0.0.1", "not allowed"]),  # and the path (a signature?) not echoed
    ],
)
def test_bad_redirects_are_a_502_never_content(hostile: Hostile, mode: str, said: list[str]) -> None:
    hostile.evil.rewrite = _after_v2
    hostile.evil.mode = mode
    try:
        status, _, body = get(f"{hostile.url}/v2/{hostile.evil_host}/library/zbox/manifests/1")
    finally:
        hostile.evil.mode = "ok"
    assert status == 502, body
    message = str(_error(body)["message"])
    assert all(s in message for s in said) and "passwd" not in message, message


def test_redirect_policy() -> None:
    from berth_registry_proxy.upstream import redirect_allowed

    assert redirect_allowed("https://registry-1.docker.io", URL("https://cdn.example/blob?sig=1"))
    assert redirect_allowed("http://127.0.0.1:5000", URL("https://cdn.example/x"))
    assert redirect_allowed("http://127.0.0.1:5000", URL("http://127.0.0.1:5001/x"))
    assert not redirect_allowed("https://registry-1.docker.io", URL("http://cdn.example/x"))  # downgrade
    for target in ("ftp://cdn.example/x", "file:///etc/passwd", "unix:///run/docker.sock"):
        assert not redirect_allowed("http://127.0.0.1:5000", URL(target))
    assert not redirect_allowed("https://r.example", URL("https://user:pw@cdn.example/x"))


def test_cache_paths_stay_inside_the_root(tmp_path: Path) -> None:
    from berth_registry_proxy.cache import Cache, OutsideRoot

    cache = Cache(tmp_path / "cache")
    digest = "sha256:" + "a" * 64
    for host, repo, tag in [("x/../..", "r", "t"), ("h", "../r", "t"), ("h", "r", "../t"), ("h", "r/..", "t")]:
        with pytest.raises(OutsideRoot):
            cache.put_tag(host, repo, tag, digest)
    # A symbolic link planted in the cache does not lead out of it either.
    os.symlink(tmp_path, cache.tag_dir / "h")
    with pytest.raises(OutsideRoot):
        cache.put_tag("h", "r", "t", digest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_a_download_for_one_repository_is_not_streamed_to_another(hostile: Hostile) -> None:
    """A client naming a repository without the blob must not join another's download of it."""
    fresh = tr.push_unique(hostile.hub.upstream, "library/fresh", "1", secrets.token_hex(8))
    layer = fresh.layer_digests[-1]  # only library/fresh holds it
    hostile.hub.hold_for, hostile.hub.hold_timeout = 2, 5.0  # its GET waits for a second request
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(get, f"{hostile.url}/v2/library/fresh/blobs/{layer}")
            _wait(lambda: hostile.hub.blob_gets(layer) == 1, 20)
            status, _, body = get(f"{hostile.url}/v2/library/busybox/blobs/{layer}")
            assert status == 404 and _error(body)["code"] == "BLOB_UNKNOWN", body
            status, _, body = first.result(timeout=60)
            assert status == 200 and tr._sha(body) == layer
    finally:
        hostile.hub.hold_for = 0


def test_credentials_never_follow_a_redirect_to_another_host(upstream: tuple[str, tr.Seeded]) -> None:
    """Configured credentials go to their host only; its redirect elsewhere goes without them."""
    with (
        nats_server() as nats,
        tempfile.TemporaryDirectory(prefix="berth-rp-") as tmp,
        tr.Front(upstream[0]) as private,
        tr.Front(upstream[0]) as cdn,
    ):
        private.mode, private.redirect_to = "auth307", cdn.url
        host = f"127.0.0.1:{private.port}"
        env = {
            "BERTH_NATS_URL": nats,
            "BERTH_REGISTRY_PROXY_DATA": tmp,
            "BERTH_REGISTRY_PROXY_CREDENTIALS": f"{host}=user:secret",
        }
        with run_proxy(env) as url:
            status, headers, _ = get(f"{url}/v2/{host}/library/busybox/manifests/1")
        assert status == 200 and headers["Docker-Content-Digest"] == upstream[1].busybox.digest
        assert private.authorizations and all(a.startswith("Basic ") for a in private.authorizations)
        assert cdn.authorizations == []
