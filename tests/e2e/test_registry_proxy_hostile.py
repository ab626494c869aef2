"""A local unprivileged user against berth's registry-proxy (issue 15, finding 2).

On main, `nobody` made the root proxy create files wherever it chose through
`?ns=127.0.0.1:18080/../../..` (a registry of its own on 18080 answering any path), and wrote
Docker Hub's tags through `?ns=<its registry>/../docker.io`. Now both are a 400 NAME_INVALID
in the registry's error format, before any upstream is asked, and nothing is written.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from berth_testsupport import registry as tr
from harness import Berth

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not shutil.which(tr.REGISTRY_BINARY), reason="docker-registry not installed (make install)"),
]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture(scope="module")
def evil_registry() -> Iterator[tr.Front]:
    """The user's own registry: answers any path that ends in /v2/... (served by a real one)."""
    with tr.registry() as url:
        tr.seed(url)
        with tr.Front(url) as front:
            front.rewrite = lambda path: path[path.index("/v2/") :] if "/v2/" in path else path
            yield front


def _proxy_url(berth: Berth) -> str:
    """Where the registry-proxy listens (its port is chosen by `berth up`): its pid's socket."""
    pid = berth.service("berth-registry-proxy")["pid"]
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if f"pid={pid}," in line:
            return "http://" + line.split()[3]
    raise AssertionError(f"registry-proxy (pid {pid}) listens nowhere:\n{out}")


def _curl_as_nobody(url: str, ns: str) -> tuple[int, dict[str, object]]:
    res = subprocess.run(
        [*NOBODY, "curl", "-sS", "-G", "--max-time", "30", "-w", "\n%{http_code}", "--data-urlencode", f"ns={ns}", url],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 0, res.stderr
    body, _, code = res.stdout.rpartition("\n")
    return int(code), json.loads(body)


def test_nobody_cannot_write_outside_the_cache_nor_docker_hub_tags(berth: Berth, evil_registry: tr.Front) -> None:
    proxy = _proxy_url(berth)
    cache = berth.data_root / "registry-proxy"
    evil = f"127.0.0.1:{evil_registry.port}"
    target = Path(f"/tmp/sec-pwn-{secrets.token_hex(4)}")
    # From <cache>/tags/<evil host>/ up to / and down to the target, as in the report.
    ups = len((cache / "tags" / evil.replace(":", "_")).parts) - 1
    hub_tags = cache / "tags" / "docker.io"
    hub_before = sorted(hub_tags.rglob("*")) if hub_tags.exists() else []
    asked = sum(evil_registry.counts.values())
    try:
        for ns in (f"{evil}/{'../' * ups}{str(target).lstrip('/')}", f"{evil}/../../..", f"{evil}/../docker.io"):
            status, doc = _curl_as_nobody(f"{proxy}/v2/library/busybox/manifests/1", ns)
            assert not target.exists(), f"{ns} wrote {sorted(target.rglob('*'))}"
            assert status == 400, (ns, doc)
            errors = doc["errors"]
            assert isinstance(errors, list) and errors[0]["code"] == "NAME_INVALID", doc
            assert "invalid registry host" in errors[0]["message"]
        assert (sorted(hub_tags.rglob("*")) if hub_tags.exists() else []) == hub_before
        assert sum(evil_registry.counts.values()) == asked  # refused before any upstream was asked
        # The same user's registry named properly is served (and cached under its own name).
        status, doc = _curl_as_nobody(f"{proxy}/v2/{evil}/library/busybox/tags/list", "")
        assert status == 200 and doc["tags"] == ["1"], doc
    finally:
        shutil.rmtree(target, ignore_errors=True)
