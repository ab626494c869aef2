"""A real upstream (docker-registry, seeded) behind a counting Front, and the proxy as a service."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from berth_kit.testing import nats_server
from berth_testsupport import registry as tr
from proxy_harness import ProxyRun, run_proxy  # noqa: E402


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, tr.Seeded]]:
    with tr.registry() as url:
        yield url, tr.seed(url)


@pytest.fixture
def proxy(upstream: tuple[str, tr.Seeded]) -> Iterator[ProxyRun]:
    """A fresh proxy (empty cache) in front of a fresh Front of the module's registry."""
    url, seeded = upstream
    with nats_server() as nats, tempfile.TemporaryDirectory(prefix="berth-rp-") as tmp, tr.Front(url) as front:
        env = {
            "BERTH_NATS_URL": nats,
            "BERTH_REGISTRY_PROXY_DATA": tmp,
            "BERTH_REGISTRY_PROXY_DOCKER_HUB": front.url,
            "BERTH_REGISTRY_PROXY_UPSTREAMS": f"registry.test={front.url}",
            "BERTH_REGISTRY_PROXY_TAG_TTL": "0",
            "BERTH_REGISTRY_PROXY_CONNECT_TIMEOUT": "3",
        }
        with run_proxy(env) as proxy_url:
            yield ProxyRun(proxy_url, front, seeded, Path(tmp))
