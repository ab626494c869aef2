"""Property-based requests to berth's own registry: any method, hosted-shaped path, query,
Content-Range and body, signed in or not, must never give a 5xx nor a file outside the data
directory (same bounds as test_fuzz.py; HYPOTHESIS_PROFILE=long runs more)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator

import pytest
from hosted_harness import HostedRun, hosted_registry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import HOSTILE, LONG

FUZZ = settings(max_examples=3000 if LONG else 80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UUIDISH = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture(scope="module")
def reg() -> Iterator[tuple[HostedRun, str]]:
    # No pull-through host may be reached: a generated `ns` must never leave the machine.
    with hosted_registry({"BERTH_REGISTRY_WEBHOOKS": "", "BERTH_REGISTRY_PROXY_ALLOWED_HOSTS": ""}) as run:
        token = run.token("alice", "alice-pw", "repository:alice/x:pull,push,delete", "registry:catalog:*")
        yield run, token


_part = st.one_of(st.sampled_from([*HOSTILE, UUIDISH, "x", "alice", "uploads", "_layers", "_manifests"]),
                  st.text(max_size=16))
_name = st.one_of(st.just("alice/x"), st.lists(_part, min_size=1, max_size=3).map(lambda p: "/".join(["alice", *p])))
_path = st.one_of(
    st.tuples(_name, st.sampled_from(["manifests", "blobs", "blobs/uploads"]), _part).map("/".join),
    _name.map(lambda n: f"{n}/tags/list"),
    _name.map(lambda n: f"{n}/blobs/uploads/"),
    st.just("_catalog"),
)
_query = st.dictionaries(st.sampled_from(["digest", "mount", "from", "n", "last", "ns"]),
                         st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30)), max_size=3)


@FUZZ
@given(
    method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"]),
    path=_path, query=_query, own_prefix=st.booleans(), signed=st.booleans(),
    content_range=st.one_of(st.just(""), st.sampled_from(["0-0", "bytes=0-", "5-2", "x", "99999999999999999999-1"])),
    body=st.one_of(st.binary(max_size=64), st.just(b'{"schemaVersion":2,"config":{"digest":"sha256:' + b"0" * 64 + b'"}}')),
)
def test_any_hosted_request(reg: tuple[HostedRun, str], method: str, path: str, query: dict[str, str],
                            own_prefix: bool, signed: bool, content_range: str, body: bytes) -> None:
    run, token = reg
    if own_prefix and path != "_catalog":
        path = f"{run.address}/{path}"
    target = "/v2/" + urllib.parse.quote(path, safe="/%:@!$&'()*+,;=")
    if query:
        target += "?" + urllib.parse.urlencode(query)
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    if signed:
        headers["Authorization"] = f"Bearer {token}"
    if content_range:
        headers["Content-Range"] = content_range
    conn = http.client.HTTPConnection("127.0.0.1", int(run.address.rpartition(":")[2]), timeout=30)
    try:
        conn.request(method, target, body=body if method in ("PUT", "POST", "PATCH") else None, headers=headers)
        resp = conn.getresponse()
        status, answer, api = resp.status, resp.read(), resp.getheader("Docker-Distribution-API-Version")
    finally:
        conn.close()
    # 503 UNAVAILABLE: a name that is not hosted went to pull-through, whose upstream is down here.
    unavailable = status == 503 and b'"UNAVAILABLE"' in answer
    assert status < 500 or unavailable, (method, target, status, answer[:300])
    if status >= 400 and method != "HEAD" and api:  # not aiohttp's own 400 for a broken request line
        assert json.loads(answer)["errors"], answer
    root = run.data.parent
    outside = [p for p in root.rglob("*") if p.name not in ("htpasswd", "permissions.json", "data")
               and run.data not in p.parents]
    assert outside == [], target
