"""Malformed requests on the raw API socket get Docker's errors, and the API keeps answering."""

from __future__ import annotations

import pytest
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

JSON = {"Content-Type": "application/json"}


def test_malformed_json(berth: Berth) -> None:
    res = berth.http("POST", "/containers/create", b"{not json", JSON)
    assert res.status == 400, res.body
    assert res.headers.get("content-type", "").startswith("application/json")
    assert isinstance(res.json()["message"], str) and res.json()["message"]


def test_wrong_type(berth: Berth) -> None:
    res = berth.http("POST", "/containers/create", b'{"Image": 5}', JSON)
    assert res.status == 400, res.body
    assert res.json()["message"]


def test_versioned_wrong_type(berth: Berth) -> None:
    res = berth.http("POST", "/v1.44/containers/create", b'{"Image": 5}', JSON)
    assert res.status == 400, res.body


def test_unknown_route(berth: Berth) -> None:
    res = berth.http("GET", "/no/such/route")
    assert res.status == 404
    assert res.json()["message"] == "page not found"


def test_ping_still_answers(berth: Berth) -> None:
    for path in ("/containers/create", "/v1.44/containers/create"):
        berth.http("POST", path, b"\xff\xfe garbage", JSON)
    res = berth.http("GET", "/_ping")
    assert res.status == 200
    assert res.body == b"OK"
