"""Which upstream a path names."""

from __future__ import annotations

import pytest
from berth_registry_proxy.config import ProxyConfig
from berth_registry_proxy.errors import RegistryError
from berth_registry_proxy.names import split_name


def test_split_name() -> None:
    assert split_name("busybox") == ("docker.io", "library/busybox")
    assert split_name("user/app") == ("docker.io", "user/app")
    assert split_name("ghcr.io/org/app") == ("ghcr.io", "org/app")
    assert split_name("127.0.0.1:5000/library/busybox") == ("127.0.0.1:5000", "library/busybox")
    assert split_name("library/busybox", ns="127.0.0.1:5000") == ("127.0.0.1:5000", "library/busybox")
    assert split_name("busybox", ns="docker.io") == ("docker.io", "library/busybox")
    with pytest.raises(RegistryError):
        split_name("Bad/Name")


def test_plain_http_only_for_loopback_or_configured() -> None:
    cfg = ProxyConfig(insecure=frozenset({"reg.lan:5000"}), upstreams={"quay.io": "https://mirror.example"})
    assert cfg.base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert cfg.base_url("localhost:5000") == "http://localhost:5000"
    assert cfg.base_url("reg.lan:5000") == "http://reg.lan:5000"
    assert cfg.base_url("ghcr.io") == "https://ghcr.io"
    assert cfg.base_url("quay.io") == "https://mirror.example"
    assert cfg.base_url("docker.io") == "https://registry-1.docker.io"
