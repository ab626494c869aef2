"""Property-based tests of the proxy's paths and query parameters (issue 15's fuzzing).

Against the real proxy process and a real upstream: arbitrary text, `..`, percent-encoding,
unicode and huge parts must never give a 5xx, a file outside the cache root, or a request
that does not answer. The default run is bounded (a few seconds);
`HYPOTHESIS_PROFILE=long` runs many more examples (see the README).
"""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from berth_common import refgrammar
from berth_kit.testing import nats_server
from berth_registry_proxy.errors import RegistryError
from berth_registry_proxy.names import split_name
from berth_testsupport import registry as tr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from proxy_harness import run_proxy
from yarl import URL

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
# Local settings, not a loaded profile: other test modules keep their own.
FUZZ = settings(
    max_examples=3000 if LONG else 80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PURE = settings(max_examples=5000 if LONG else 150, deadline=None)

HOSTILE = [
    "..", ".", "", "%2e%2e", "%2E%2E%2F", "%2F", "%00", "..%2f..", "%", "%zz", "\\..", "~", "/",
    "sha256:" + "0" * 64, "sha256:" + "A" * 64, "sha512:" + "0" * 128, "manifests", "blobs", "tags",
    "list", "library", "busybox", "1", "v2", "docker.io", "registry.test", "localhost:1", "Docker.IO",
    "user@host", "\u00e4", "\u202e", "\ufeff", "\n", "a" * 300, "x" * 9000,
]


@dataclass
class Fuzzed:
    url: str
    front_host: str
    outer: Path

    def escaped(self) -> list[str]:
        cache = self.outer / "a" / "cache"
        return [
            str(p) for p in self.outer.rglob("*") if p != self.outer / "a" and p != cache and cache not in p.parents
        ]


@pytest.fixture(scope="module")
def fuzzed(upstream: tuple[str, tr.Seeded]) -> Iterator[Fuzzed]:
    with (
        nats_server() as nats,
        tempfile.TemporaryDirectory(prefix="berth-rp-fuzz-") as tmp,
        tr.Front(upstream[0]) as front,
    ):
        outer = Path(tmp)
        (outer / "a" / "cache").mkdir(parents=True)
        host = f"127.0.0.1:{front.port}"
        env = {
            "BERTH_NATS_URL": nats,
            "BERTH_REGISTRY_PROXY_DATA": str(outer / "a" / "cache"),
            "BERTH_REGISTRY_PROXY_DOCKER_HUB": front.url,
            "BERTH_REGISTRY_PROXY_UPSTREAMS": f"registry.test={front.url}",
            # Only local upstreams: a generated host name must never cause a DNS query or a
            # connection off this machine (any other host is a 403 DENIED).
            "BERTH_REGISTRY_PROXY_ALLOWED_HOSTS": host,
            "BERTH_REGISTRY_PROXY_CONNECT_TIMEOUT": "3",
        }
        with run_proxy(env) as url:
            yield Fuzzed(url, host, outer)


# Host-like parts: labels, dots, ports, brackets, as a registry host is spelled (or nearly).
_hostish = st.lists(
    st.sampled_from(["a", "b-", "-c", "0", "127", "", "[", "]", "::1", "zz", "x" * 70, "\u00e4", "%2e"]), min_size=1, max_size=5
).flatmap(
    lambda labels: st.tuples(st.just(".".join(labels)), st.sampled_from(["", ":0", ":1", ":65536", ":x", ":"]))
).map("".join)
_part = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=24), _hostish)
_names = st.lists(st.one_of(st.sampled_from(["library", "busybox", "multiarch", ".."]), _part), min_size=1, max_size=4)
# Half the paths have the API's shape (<name>/manifests/<ref>, .../blobs/<ref>, .../tags/list),
# so the parts reach the handlers and not only the router.
_paths = st.one_of(
    st.lists(_part, max_size=8).map("/".join),
    st.tuples(_names.map("/".join), st.sampled_from(["manifests", "blobs"]), _part).map("/".join),
    _names.map(lambda parts: "/".join([*parts, "tags", "list"])),
)
_queries = st.dictionaries(
    st.sampled_from(["ns", "n", "last", "ns", "x"]),
    st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40), _hostish),
    max_size=3,
)


def _request(base: str, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, dict(resp.headers), resp.read()
    finally:
        conn.close()


@FUZZ
# The reported cases, always run: the traversal through ns, and hosts the URL parser rejects.
@example(method="GET", path="library/busybox/manifests/1", query={"ns": "127.0.0.1:18080/../../.."}, front_first=False)
@example(method="GET", path="library/tags/list", query={"ns": "a..b"}, front_first=False)
@example(method="HEAD", path="[zz]:5000/x/blobs/sha256:" + "0" * 64, query={}, front_first=False)
@given(
    method=st.sampled_from(["GET", "HEAD", "GET", "PUT", "DELETE"]),
    path=_paths,
    query=_queries,
    front_first=st.booleans(),
)
def test_any_path_and_query(fuzzed: Fuzzed, method: str, path: str, query: dict[str, str], front_first: bool) -> None:
    if front_first:
        path = f"{fuzzed.front_host}/{path}"
    # Keep '%' as sent: raw, possibly invalid percent sequences reach the server.
    target = "/v2/" + urllib.parse.quote(path, safe="/%:@!$&'()*+,;=")
    if query:
        target += "?" + urllib.parse.urlencode(query)
    status, headers, body = _request(fuzzed.url, method, target)
    assert status < 500, (target, status, body[:300])
    if status >= 400 and method != "HEAD" and "Docker-Distribution-API-Version" in headers:
        errors = json.loads(body)["errors"]
        assert errors and all({"code", "message"} <= set(e) for e in errors), body
    assert fuzzed.escaped() == [], target


@PURE
@given(st.one_of(st.text(), st.sampled_from(HOSTILE), st.lists(_part, max_size=4).map(":".join)))
def test_a_domain_that_passes_is_a_bare_host(value: str) -> None:
    if not refgrammar.is_domain(value):
        return
    url = URL(f"http://{value}/v2/")
    assert url.path == "/v2/" and url.user is None and url.host
    assert not any(c in value for c in "/\\@?#%") and ".." not in value


@PURE
@given(st.one_of(st.text(), st.lists(_part, max_size=6).map("/".join)))
def test_a_remote_name_that_passes_stays_under_a_root(value: str) -> None:
    if not refgrammar.is_remote_name(value):
        return
    root = Path("/cache/root")
    assert (root / value).resolve().is_relative_to(root)
    assert not {".", ".."} & set(value.split("/"))


@PURE
@given(name=st.lists(_part, max_size=5).map("/".join), ns=st.one_of(st.just(""), st.sampled_from(HOSTILE), st.text()))
def test_split_name_returns_checked_parts_or_a_registry_error(name: str, ns: str) -> None:
    try:
        host, repo = split_name(name, ns)
    except RegistryError as exc:
        assert exc.status == 400 and exc.code == "NAME_INVALID"
        return
    assert refgrammar.is_domain(host) and refgrammar.is_remote_name(repo)


@PURE
@given(host=st.one_of(_hostish, _part), repo=st.lists(_part, max_size=4).map("/".join), tag=_part)
def test_cache_paths_are_built_inside_the_root_or_refused(tmp_path_factory: pytest.TempPathFactory, host: str, repo: str, tag: str) -> None:
    from berth_registry_proxy.cache import Cache, OutsideRoot

    root = tmp_path_factory.getbasetemp() / "fuzz-cache"
    cache = Cache(root / "cache")
    try:
        cache.put_tag(host, repo, tag, "sha256:" + "0" * 64)
        cache.link(host, repo, {"sha256:" + "1" * 64})
    except OutsideRoot:
        return
    assert sorted(p.name for p in root.iterdir()) == ["cache"]
