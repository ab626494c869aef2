import pytest
from berth_contracts.errors import InvalidParameter
from berth_engine.containers.signals import parse_signal


@pytest.mark.parametrize(
    ("raw", "num"),
    [("KILL", 9), ("SIGKILL", 9), ("9", 9), ("kill", 9), ("TERM", 15), ("SIGTERM", 15),
     ("15", 15), ("INT", 2), ("HUP", 1), ("USR1", 10), ("SIGQUIT", 3), ("RTMIN+1", 35)],
)  # fmt: skip
def test_parse(raw: str, num: int) -> None:
    assert parse_signal(raw) == num


@pytest.mark.parametrize("raw", ["", "NOPE", "SIGNOPE", "0", "99", "-1"])
def test_invalid(raw: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_signal(raw)
    assert err.value.message == f"Invalid signal: {raw}"
