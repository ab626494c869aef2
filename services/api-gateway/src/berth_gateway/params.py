"""Query-parameter conventions of the Docker API (booleans, integers, filters)."""

from __future__ import annotations

import math
from datetime import datetime

import msgspec
from aiohttp import web
from berth_contracts.errors import InvalidParameter

_FALSE = {"", "0", "no", "false", "none"}


def to_bool(value: str) -> bool:
    """httputils.BoolValue: false for "" 0 no false none (any case), true otherwise."""
    return value.strip().lower() not in _FALSE


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean parameter; `default` applies only when the parameter is absent."""
    if name not in request.query:
        return default
    return to_bool(request.query[name])


def qint(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameter(f'strconv.Atoi: parsing "{raw}": invalid syntax') from None


def qopt_int(request: web.Request, name: str) -> int | None:
    if request.query.get(name, "") == "":
        return None
    return qint(request, name, 0)


def parse_filters(raw: str) -> dict[str, list[str]]:
    """filters JSON in either form: {"k":{"v":true}} (Go clients) or {"k":["v"]} (docker-py)."""
    if not raw:
        return {}
    try:
        decoded = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidParameter(f"invalid filter '{raw}'") from None
    if not isinstance(decoded, dict):
        raise InvalidParameter(f"invalid filter '{raw}'")
    result: dict[str, list[str]] = {}
    for key, value in decoded.items():
        if isinstance(value, dict):
            result[key] = [str(k) for k, on in value.items() if on]
        elif isinstance(value, list):
            result[key] = [str(v) for v in value]
        elif isinstance(value, str):
            result[key] = [value]
        else:
            raise InvalidParameter(f"invalid filter '{raw}'")
    return result


def qfilters(request: web.Request) -> dict[str, list[str]]:
    return parse_filters(request.query.get("filters", ""))


def parse_timestamp(raw: str, name: str = "since") -> float:
    """Docker's time arguments: unix seconds ("1700000000.123456789") or RFC3339.

    0.0 means "not given". The CLI already converts durations like "10m" into unix seconds.
    """
    if raw == "":
        return 0.0
    try:
        value = float(raw)
        if math.isfinite(value):
            return value
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidParameter(f'failed to parse value as time or duration: "{raw}"') from None


def qtime(request: web.Request, name: str) -> float:
    return parse_timestamp(request.query.get(name, ""), name)
