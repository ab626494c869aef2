from collections.abc import Callable

import pytest
from berth_contracts.docker import CreateRequest, HostConfig, RestartPolicy
from berth_contracts.errors import InvalidParameter
from berth_engine.records import Record
from berth_engine.restarts import FIRST_DELAY, MAX_DELAY, next_delay, validate_policy, wants_restart


def test_validate_policy_words() -> None:
    for ok in ("", "no", "always", "unless-stopped", "on-failure"):
        validate_policy(RestartPolicy(name=ok), auto_remove=False)
    validate_policy(RestartPolicy(name="on-failure", maximum_retry_count=3), auto_remove=False)
    with pytest.raises(InvalidParameter) as err:
        validate_policy(RestartPolicy(name="sometimes"), auto_remove=False)
    assert err.value.message == (
        "invalid restart policy: unknown policy 'sometimes'; use one of "
        "'no', 'always', 'on-failure', or 'unless-stopped'"
    )
    with pytest.raises(InvalidParameter, match="can only be used with 'on-failure'"):
        validate_policy(RestartPolicy(name="always", maximum_retry_count=2), auto_remove=False)
    with pytest.raises(InvalidParameter, match="cannot be negative"):
        validate_policy(RestartPolicy(name="on-failure", maximum_retry_count=-1), auto_remove=False)
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
