from __future__ import annotations

import pytest
from berth_common.hosts import host_name, is_loopback


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000", "127.9.9.9:1", "[::1]", "[::1]:5000", "::1"],
)
def test_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["reg.lan:5000", "10.0.0.1", "[::2]:5000", "127.0.0.1.evil.test", "localhost.evil.test:5000", "[::1", ""],
)
def test_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_host_name() -> None:
    assert host_name("[fe80::1]:5000") == "fe80::1"
    assert host_name("reg.lan:5000") == "reg.lan"
    assert host_name("fe80::1") == "fe80::1"
