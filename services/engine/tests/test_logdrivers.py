"""Logging drivers: names and options at create, values at start, in dockerd 20.10's words."""

from __future__ import annotations

import pytest
from berth_contracts.agent import TaskLogConfig
from berth_contracts.docker import LogConfig
from berth_contracts.errors import InternalError, InvalidParameter, NotImplementedByBerth
from berth_engine.containers.logdrivers import check_log_config, task_log_config


def test_create_refuses_unknown_drivers_and_options() -> None:
    with pytest.raises(InvalidParameter) as err:
        check_log_config(LogConfig(type="asdf"))
    assert err.value.message == "logger: no log driver named 'asdf' is registered"
    with pytest.raises(InvalidParameter) as err:
        check_log_config(LogConfig(type="json-file", config={"asdf": "1"}))
    assert err.value.message == "unknown log opt 'asdf' for json-file log driver"
    with pytest.raises(InvalidParameter) as err:
        check_log_config(LogConfig(type="local", config={"asdf": "1"}))
    assert err.value.message == "unknown log opt 'asdf' for log driver local"
    with pytest.raises(NotImplementedByBerth, match="syslog"):
        check_log_config(LogConfig(type="syslog"))
    for ok in (LogConfig(), LogConfig(type="none", config={"max-size": "1k"}),
               LogConfig(type="local", config={"max-size": "1m", "max-file": "2"})):  # fmt: skip
        check_log_config(ok)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (LogConfig(type="json-file", config={"max-size": "abc"}), "invalid size: 'abc'"),
        (LogConfig(type="json-file", config={"max-size": "-1"}), "invalid size: '-1'"),
        (LogConfig(type="json-file", config={"max-size": "0"}), "max-size must be a positive number"),
        (LogConfig(type="json-file", config={"max-file": "0"}), "max-file cannot be less than 1"),
        (LogConfig(type="json-file", config={"max-file": "x", "max-size": "1k"}),
         'strconv.Atoi: parsing "x": invalid syntax'),
        (LogConfig(type="json-file", config={"compress": "true"}),
         "compress cannot be true when max-file is less than 2 or max-size is not set"),
        (LogConfig(type="local", config={"max-size": "abc"}),
         "invalid value for max-size: abc: invalid size: 'abc'"),
        (LogConfig(type="local", config={"max-file": "1"}),
         "compression cannot be enabled when max file count is 1"),
        (LogConfig(type="local", config={"compress": "maybe"}),
         'error reading compress log option: strconv.ParseBool: parsing "maybe": invalid syntax'),
    ],
)  # fmt: skip
def test_start_refuses_bad_values(config: LogConfig, words: str) -> None:
    with pytest.raises(InternalError) as err:
        task_log_config(config)
    assert err.value.message == f"failed to initialize logging driver: {words}"


def test_what_the_shim_is_told() -> None:
    assert task_log_config(LogConfig()) == TaskLogConfig()
    assert task_log_config(LogConfig(type="none")) == TaskLogConfig(driver="none")
    # json-file sizes are decimal (go-units FromHumanSize), local's binary (RAMInBytes).
    assert task_log_config(
        LogConfig(type="json-file", config={"max-size": "1.5k", "max-file": "3"})
    ) == TaskLogConfig(max_size=1500, max_files=3)
    assert task_log_config(LogConfig(type="local")) == TaskLogConfig(
        driver="local", max_size=20 * 1024 * 1024, max_files=5
    )
    assert task_log_config(
        LogConfig(type="local", config={"max-size": "1m", "max-file": "1", "compress": "false"})
    ) == TaskLogConfig(driver="local", max_size=1024 * 1024, max_files=1)
