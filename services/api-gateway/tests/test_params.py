"""Query-parameter conventions: booleans, filters, timestamps, tail."""

from __future__ import annotations

import pytest
from berth_contracts.errors import InvalidParameter
from berth_gateway.params import parse_filters, parse_timestamp, to_bool
from berth_gateway.routes.logs import parse_tail
from berth_gateway.routes.wait import parse_condition


@pytest.mark.parametrize(
    "value", ["", "0", "no", "false", "none", "FALSE", "False", "None", " No "]
)
def test_false_values(value: str) -> None:
    assert to_bool(value) is False


@pytest.mark.parametrize("value", ["1", "true", "True", "yes", "on", "anything"])
def test_true_values(value: str) -> None:
    assert to_bool(value) is True


def test_filters_map_form_from_go_clients() -> None:
    raw = '{"label":{"com.docker.compose.project=foo":true,"off":false},"status":{"exited":true}}'
    assert parse_filters(raw) == {
        "label": ["com.docker.compose.project=foo"],
        "status": ["exited"],
    }


def test_filters_list_form_from_docker_py() -> None:
    assert parse_filters('{"label":["a=b"],"dangling":["true"]}') == {
        "label": ["a=b"],
        "dangling": ["true"],
    }


def test_filters_empty_and_invalid() -> None:
    assert parse_filters("") == {}
    assert parse_filters("{}") == {}
    with pytest.raises(InvalidParameter):
        parse_filters("{not json")
    with pytest.raises(InvalidParameter):
        parse_filters("[1,2]")
    with pytest.raises(InvalidParameter):
        parse_filters('{"label": 3}')


def test_timestamps() -> None:
    assert parse_timestamp("") == 0.0
    assert parse_timestamp("1700000000.123456789") == pytest.approx(1700000000.123456789)
    assert parse_timestamp("2023-11-14T22:13:20Z") == pytest.approx(1700000000.0)
    with pytest.raises(InvalidParameter):
        parse_timestamp("yesterday")


def test_tail() -> None:
    assert parse_tail("") == -1
    assert parse_tail("all") == -1
    assert parse_tail("5") == 5
    assert parse_tail("0") == 0
    assert parse_tail("-3") == -1


def test_wait_conditions() -> None:
    assert parse_condition("") == "not-running"
    assert parse_condition("next-exit") == "next-exit"
    assert parse_condition("removed") == "removed"
    with pytest.raises(InvalidParameter, match="invalid condition"):
        parse_condition("whenever")
