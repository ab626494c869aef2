"""Version prefixes and the too-old / too-new messages."""

from __future__ import annotations

import pytest
from berth_contracts.errors import InvalidParameter
from berth_gateway import versions
from berth_gateway.hosts import parse_host, parse_hosts


def test_compare_is_numeric_per_component() -> None:
    assert versions.compare("1.9", "1.10") < 0
    assert versions.compare("1.44", "1.44") == 0
    assert versions.compare("1.44.0", "1.44") == 0
    assert versions.compare("2.0", "1.99") > 0


def test_check_accepts_the_supported_range() -> None:
    assert versions.check(None) == "1.44"
    assert versions.check("") == "1.44"
    assert versions.check("1.24") == "1.24"
    assert versions.check("1.44") == "1.44"
    assert versions.check("1.41") == "1.41"


def test_too_old() -> None:
    with pytest.raises(InvalidParameter) as err:
        versions.check("1.23")
    assert err.value.message == (
        "client version 1.23 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version"
    )


def test_too_new() -> None:
    with pytest.raises(InvalidParameter) as err:
        versions.check("1.52")
    assert err.value.message == (
        "client version 1.52 is too new. Maximum supported API version is 1.44"
    )


def test_hosts() -> None:
    assert str(parse_host("unix:///run/berth/docker.sock")) == "unix:///run/berth/docker.sock"
    tcp = parse_host("tcp://127.0.0.1:2399")
    assert (tcp.kind, tcp.host, tcp.port) == ("tcp", "127.0.0.1", 2399)
    assert parse_host("tcp://0.0.0.0").port == 2375
    assert [h.kind for h in parse_hosts("unix:///a.sock, tcp://127.0.0.1:1")] == ["unix", "tcp"]
    with pytest.raises(ValueError):
        parse_host("unix://relative.sock")
    with pytest.raises(ValueError):
        parse_host("http://x")
    with pytest.raises(ValueError):
        parse_hosts(" , ")
