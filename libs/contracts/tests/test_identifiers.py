"""containerd's identifier rule and Docker's name rule, and the words of a refused request."""

from __future__ import annotations

import msgspec
import pytest
from berth_contracts.agent import AgentRequest, TaskDelete, TaskLogs
from berth_contracts.codec import decode_as, encode
from berth_contracts.errors import InvalidParameter
from berth_contracts.identifiers import (
    describe_invalid,
    is_identifier,
    is_name,
    validate_container_id,
    validate_identifier,
)

GOOD = ["a", "abc", "a.b", "a-b_c.d", "A1", "c" * 64, "x" * 76]
BAD = ["", ".", "..", "../x", "a/b", "-a", "a-", "a..b", "a b", "x\x00", "é", "x" * 77]


@pytest.mark.parametrize("value", GOOD)
def test_good_identifiers(value: str) -> None:
    assert validate_identifier(value) == value and is_identifier(value)
    assert decode_as(encode(TaskDelete(container_id=value)), AgentRequest).container_id == value


@pytest.mark.parametrize("value", BAD)
def test_bad_identifiers_are_refused_in_code_and_while_decoding(value: str) -> None:
    with pytest.raises(InvalidParameter, match="invalid container id: identifier"):
        validate_identifier(value, "container id")
    assert not is_identifier(value)
    raw = encode(TaskDelete(container_id=value))
    with pytest.raises(msgspec.ValidationError) as info:
        decode_as(raw, AgentRequest)
    assert describe_invalid(info.value, raw).startswith("invalid container_id: identifier")


def test_words() -> None:
    raw = encode(TaskDelete(container_id="../../x"))
    with pytest.raises(msgspec.ValidationError) as info:
        decode_as(raw, AgentRequest)
    assert describe_invalid(info.value, raw) == (
        'invalid container_id: identifier "../../x" must match [A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*'
    )
    raw = encode(TaskDelete(container_id=""))
    with pytest.raises(msgspec.ValidationError) as info:
        decode_as(raw, AgentRequest)
    assert describe_invalid(info.value, raw) == "invalid container_id: identifier must not be empty"
    raw = encode(TaskLogs(container_id="abc", stream_subject="a b.>"))
    with pytest.raises(msgspec.ValidationError, match="stream_subject"):
        decode_as(raw, AgentRequest)


def test_container_ids_and_names() -> None:
    assert validate_container_id("0123456789abcdef" * 4)
    with pytest.raises(InvalidParameter, match="must be 64 hex digits"):
        validate_container_id("0123456789ABCDEF" * 4)
    assert is_name("web_1.a-b") and not is_name("_web") and not is_name("a/b")
