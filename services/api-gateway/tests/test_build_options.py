"""POST /build's query → BuildOptions, as moby's newImageBuildOptions reads it."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import make_mocked_request
from berth_contracts.builder import BuildOptions
from berth_contracts.errors import InvalidParameter, NotImplementedByBerth
from berth_gateway.routes.build import build_options


def _options(query: list[tuple[str, str]]) -> BuildOptions:
    return build_options(make_mocked_request("POST", "/build?" + urlencode(query)))


def test_defaults_and_moby_rm_rules() -> None:
    plain = _options([])
    assert (plain.remove, plain.force_remove, plain.dockerfile, plain.tags) == (True, False, "Dockerfile", [])
    assert _options([("rm", "0")]).remove is False  # docker-py's default: the steps' containers stay
    forced = _options([("rm", "0"), ("forcerm", "1")])
    assert (forced.remove, forced.force_remove) == (True, True)


def test_every_option_the_clients_send() -> None:
    got = _options([
        ("t", "a:1"), ("t", "b"), ("dockerfile", "sub/Df"), ("buildargs", json.dumps({"A": "1", "U": None})),
        ("labels", json.dumps({"l": "v"})), ("target", "x"), ("nocache", "1"), ("pull", "true"), ("q", "1"),
        ("networkmode", "none"), ("extrahosts", "h:1.2.3.4"), ("memory", "64000000"), ("cpushares", "2"),
        ("cachefrom", json.dumps(["img"])), ("shmsize", "1024"), ("buildid", "b-1"),
    ])  # fmt: skip
    assert got.tags == ["a:1", "b"] and got.dockerfile == "sub/Df"
    assert got.build_args == {"A": "1", "U": None} and got.labels == {"l": "v"}
    assert (got.target, got.no_cache, got.pull, got.quiet, got.network_mode) == ("x", True, True, True, "none")
    assert got.extra_hosts == ["h:1.2.3.4"] and got.memory == 64000000 and got.cpu_shares == 2
    assert got.cache_from == ["img"] and got.shm_size == 1024 and got.build_id == "b-1"


def test_bad_input() -> None:
    with pytest.raises(InvalidParameter):
        _options([("buildargs", "{not json")])
    with pytest.raises(InvalidParameter):
        _options([("labels", "[1]")])
    with pytest.raises(NotImplementedByBerth, match="BuildKit"):
        _options([("version", "2")])
    # dockerd 20.10 without experimental features (checked on a scratch dockerd: 400, these words).
    with pytest.raises(InvalidParameter, match="^squash is only supported with experimental mode$"):
        _options([("squash", "1")])
    assert _options([("squash", "0")]).tags == []
