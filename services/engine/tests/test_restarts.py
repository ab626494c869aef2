from collections.abc import Callable

import pytest
from berth_contracts.docker import CreateRequest, HostConfig, RestartPolicy
from berth_contracts.errors import InvalidParameter
from berth_engine.containers.records import Record
from berth_engine.containers.restarts import (
    FIRST_DELAY,
    MAX_DELAY,
    next_delay,
    validate_policy,
    wants_restart,
)


@pytest.mark.parametrize(
    ("name", "count", "words"),
    [
        ("sometimes", 0, "invalid restart policy 'sometimes'"),
        ("always", 2, "maximum retry count cannot be used with restart policy 'always'"),
        ("always", -1, "maximum retry count cannot be used with restart policy 'always'"),
        ("unless-stopped", 1, "maximum retry count cannot be used with restart policy 'unless-stopped'"),
        ("no", 3, "maximum retry count cannot be used with restart policy 'no'"),
        ("on-failure", -1, "maximum retry count cannot be negative"),
    ],
)
def test_validate_policy_refuses_in_dockerds_words(name: str, count: int, words: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        validate_policy(RestartPolicy(name=name, maximum_retry_count=count), auto_remove=False)
    assert err.value.message == words


def test_validate_policy_accepts() -> None:
    for ok in ("", "no", "always", "unless-stopped", "on-failure"):
        validate_policy(RestartPolicy(name=ok), auto_remove=False)
    validate_policy(RestartPolicy(name="on-failure", maximum_retry_count=3), auto_remove=False)
    validate_policy(RestartPolicy(name="", maximum_retry_count=2), auto_remove=False)  # as dockerd
    with pytest.raises(InvalidParameter, match="AutoRemove"):
        validate_policy(RestartPolicy(name="always"), auto_remove=True)
    validate_policy(RestartPolicy(name="no"), auto_remove=True)


def _rec(make_record: Callable[..., Record], name: str, count: int = 0) -> Record:
    req = CreateRequest(
        image="busybox",
        cmd=["true"],
        host_config=HostConfig(restart_policy=RestartPolicy(name=name, maximum_retry_count=count)),
    )
    return make_record(f"r-{name or 'none'}", req)


def test_wants_restart(make_record: Callable[..., Record]) -> None:
    assert not wants_restart(_rec(make_record, "no"), 1)
    assert not wants_restart(_rec(make_record, ""), 1)
    always = _rec(make_record, "always")
    assert wants_restart(always, 0) and wants_restart(always, 1)
    always.manually_stopped = True
    assert not wants_restart(always, 1)
    assert wants_restart(_rec(make_record, "unless-stopped"), 0)
    on_failure = _rec(make_record, "on-failure", 2)
    assert not wants_restart(on_failure, 0)
    assert wants_restart(on_failure, 1)
    on_failure.restart_count = 2
    assert not wants_restart(on_failure, 1)
    unlimited = _rec(make_record, "on-failure")
    unlimited.restart_count = 100
    assert wants_restart(unlimited, 3)


def test_backoff() -> None:
    assert next_delay(0, 0) == FIRST_DELAY
    assert next_delay(FIRST_DELAY, 1) == FIRST_DELAY * 2
    assert next_delay(40, 1) == MAX_DELAY
    assert next_delay(40, 10) == FIRST_DELAY  # a long run resets the back-off
