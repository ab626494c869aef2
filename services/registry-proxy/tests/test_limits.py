"""Bounds on what a client or an upstream can make the proxy hold or wait for (issue 15, finding 6)."""

from __future__ import annotations

import http.client
import json
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit

from berth_kit.testing import nats_server
from berth_testsupport import registry as tr
from proxy_harness import ProxyRun, run_proxy
from test_pull_api import get


@contextmanager
def proxy_with(upstream: tuple[str, tr.Seeded], **env: str) -> Iterator[tuple[str, tr.Front]]:
    with nats_server() as nats, tempfile.TemporaryDirectory(prefix="berth-rp-") as tmp, tr.Front(upstream[0]) as front:
        full = {
            "BERTH_NATS_URL": nats,
            "BERTH_REGISTRY_PROXY_DATA": tmp,
            "BERTH_REGISTRY_PROXY_DOCKER_HUB": front.url,
            "BERTH_REGISTRY_PROXY_CONNECT_TIMEOUT": "10",
            **env,
        }
        with run_proxy(full) as url:
            yield url, front


def _status_with_headers(url: str, headers: list[tuple[str, str]]) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.putrequest("GET", "/v2/")
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_request_headers_are_bounded(proxy: ProxyRun) -> None:
    assert _status_with_headers(proxy.url, [(f"X-H{i}", "v") for i in range(20)]) == 200
    assert _status_with_headers(proxy.url, [(f"X-H{i}", "v") for i in range(100)]) == 400
    assert _status_with_headers(proxy.url, [("X-Big", "v" * 9000)]) in (400, 431)


def test_a_tag_list_over_the_limit_is_refused_not_cut(upstream: tuple[str, tr.Seeded]) -> None:
    with proxy_with(upstream, BERTH_REGISTRY_PROXY_MAX_MANIFEST="40") as (url, _):
        status, _, body = get(f"{url}/v2/library/multiarch/tags/list")
    assert status == 502, body
    assert json.loads(body)["errors"][0]["code"] == "UNKNOWN"


def test_an_upstream_that_stops_sending_is_given_up(upstream: tuple[str, tr.Seeded]) -> None:
    with proxy_with(upstream, BERTH_REGISTRY_PROXY_READ_TIMEOUT="1") as (url, front):
        front.mode = "stall"  # headers and one byte, then nothing
        status, _, body = get(f"{url}/v2/library/busybox/manifests/1")
    assert status == 503, body
    assert json.loads(body)["errors"][0]["code"] == "UNAVAILABLE"


def test_upstream_connections_are_bounded(upstream: tuple[str, tr.Seeded]) -> None:
    """Two blob downloads at once with a limit of one: the upstream never sees both at once
    (it holds each request until a second arrives or 3 s pass)."""
    layers = upstream[1].multilayer.layer_digests[:2]
    with proxy_with(upstream, BERTH_REGISTRY_PROXY_MAX_CONNECTIONS="1") as (url, front):
        front.hold_for = 2
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda d: get(f"{url}/v2/library/multilayer/blobs/{d}"), layers))
        assert [a[0] for a in answers] == [200, 200]
        assert [tr._sha(a[2]) for a in answers] == layers
        assert front.peak == 1
