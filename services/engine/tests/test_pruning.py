from collections.abc import Callable

import pytest
from berth_contracts.docker import CreateRequest
from berth_contracts.errors import InvalidParameter
from berth_engine.containers.pruning import selected
from berth_engine.containers.records import Record
from berth_engine.prunefilters import until_ns

S = 1_000_000_000
NOW = 1_700_000_000 * S


def test_until_forms() -> None:
    assert until_ns("1700000000", NOW) == 1_700_000_000 * S
    assert until_ns("1700000000.5", NOW) == 1_700_000_000 * S + S // 2
    assert until_ns("24h", NOW) == NOW - 24 * 3600 * S
    assert until_ns("1h30m", NOW) == NOW - 5400 * S
    assert until_ns("2023-11-14T22:13:20Z", NOW) == NOW
    assert until_ns("2023-11-14T22:13:20", NOW) == NOW
    assert until_ns("2023-11-14", NOW) == NOW - (22 * 3600 + 13 * 60 + 20) * S
    with pytest.raises(InvalidParameter):
        until_ns("yesterday", NOW)


def test_selection(make_record: Callable[..., Record]) -> None:
    rec = make_record("p", CreateRequest(image="busybox", cmd=["true"], labels={"keep": "yes", "a": "1"}),
                      created_ns=NOW - 10 * S)  # fmt: skip
    assert selected(rec, {}, None)
    assert selected(rec, {"label": ["a=1"]}, None)
    assert not selected(rec, {"label": ["a=2"]}, None)
    assert not selected(rec, {"label!": ["keep"]}, None)
    assert selected(rec, {"label!": ["keep=no"]}, None)
    assert selected(rec, {}, NOW)
    assert not selected(rec, {}, NOW - 20 * S)
