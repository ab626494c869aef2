"""Logging drivers (HostConfig.LogConfig): which berth has, their options, dockerd's words.

The shim keeps the log: `json-file` as dockerd writes it; `local` in the same json-file format
(dockerd's is protobuf-framed, read by nothing but `docker logs`) with local's defaults of
rotation; `none` keeps nothing, and reading it is dockerd's 501. Names and option names are
checked at create (400), option values when the container starts (500 "failed to initialize
logging driver: ..."), as dockerd does.
"""

from __future__ import annotations

import re

from berth_contracts.agent import TaskLogConfig
from berth_contracts.docker import LogConfig
from berth_contracts.errors import InternalError, InvalidParameter, NotImplementedByBerth

DRIVERS = ("json-file", "local", "none")
# Drivers dockerd has that berth does not: a clear 501 rather than "not registered".
DOCKER_ONLY = ("syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs",
               "gcplogs", "logentries")  # fmt: skip
_OPTIONS = {
    "json-file": ("max-file", "max-size", "compress", "labels", "labels-regex", "env",
                  "env-regex", "tag"),  # fmt: skip
    "local": ("max-file", "max-size", "compress"),
}
# json-file options that add attributes to each record (`docker logs --details`).
_ATTRIBUTE_OPTIONS = ("labels", "labels-regex", "env", "env-regex", "tag")
LOCAL_MAX_SIZE = 20 * 1024 * 1024
LOCAL_MAX_FILES = 5
_SIZE = re.compile(r"^((\d+)(\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
READ_NOT_SUPPORTED = "configured logging driver does not support reading"


def driver_of(config: LogConfig) -> str:
    return config.type or "json-file"


def check_log_config(config: LogConfig) -> None:
    """At create: the driver exists and knows every option (moby's ValidateLogOpts)."""
    driver = driver_of(config)
    if driver in DOCKER_ONLY:
        raise NotImplementedByBerth(
            f"berth does not support logging driver {driver!r} (json-file, local, none) yet"
        )
    if driver not in DRIVERS:
        raise InvalidParameter(f"logger: no log driver named '{driver}' is registered")
    if driver == "none":
        return  # dockerd validates nothing for none
    for key in sorted(config.config or {}):
        if key not in _OPTIONS[driver]:
            if driver == "json-file":
                raise InvalidParameter(f"unknown log opt '{key}' for json-file log driver")
            raise InvalidParameter(f"unknown log opt '{key}' for log driver {driver}")
        if key in _ATTRIBUTE_OPTIONS:
            raise NotImplementedByBerth(f"berth does not support the log opt '{key}' yet")


def _human_size(text: str, binary: bool) -> int:
    """go-units FromHumanSize (k = 1000) or RAMInBytes (k = 1024)."""
    m = _SIZE.match(text)
    if m is None:
        raise ValueError(f"invalid size: '{text}'")
    unit = "bkmgtp".index((m.group(4) or "b").lower())
    return int(float(m.group(1)) * (1024 if binary else 1000) ** unit)


def _atoi(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def _parse_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def task_log_config(config: LogConfig) -> TaskLogConfig:
    """At start: what the shim is told, or dockerd's 500 for an option value it cannot use."""
    try:
        return _task_log_config(config)
    except ValueError as exc:
        raise InternalError(f"failed to initialize logging driver: {exc}") from None


def _task_log_config(config: LogConfig) -> TaskLogConfig:
    driver = driver_of(config)
    opts = config.config or {}
    if driver == "none":
        return TaskLogConfig(driver="none")
    if driver == "local":
        size, files, compress = LOCAL_MAX_SIZE, LOCAL_MAX_FILES, True
        if "max-size" in opts:
            try:
                size = _human_size(opts["max-size"], binary=True)
            except ValueError as exc:
                raise ValueError(f"invalid value for max-size: {opts['max-size']}: {exc}") from None
        if "max-file" in opts:
            try:
                files = _atoi(opts["max-file"])
            except ValueError as exc:
                raise ValueError(f"invalid value for max-file: {opts['max-file']}: {exc}") from None
        if "compress" in opts:
            try:
                compress = _parse_bool(opts["compress"])
            except ValueError as exc:
                raise ValueError(f"error reading compress log option: {exc}") from None
        if compress and files <= 1:
            raise ValueError("compression cannot be enabled when max file count is 1")
        return TaskLogConfig(driver="local", max_size=max(size, 0), max_files=max(files, 1))
    size, files = 0, 1
    if "max-size" in opts:
        size = _human_size(opts["max-size"], binary=False)
        if size <= 0:
            raise ValueError("max-size must be a positive number")
    if "max-file" in opts:
        files = _atoi(opts["max-file"])
        if files < 1:
            raise ValueError("max-file cannot be less than 1")
    if "compress" in opts and _parse_bool(opts["compress"]) and (files < 2 or not size):
        raise ValueError("compress cannot be true when max-file is less than 2 or max-size is not set")
    return TaskLogConfig(driver="json-file", max_size=size, max_files=files)
