"""The filters every prune shares: known keys only, and `until` as moby's timetypes reads it."""

from __future__ import annotations

import re
import time

from berth_common.gotime import parse_ns
from berth_contracts.errors import InvalidParameter

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}  # fmt: skip


def _go_duration_ns(text: str) -> int | None:
    """Go's time.ParseDuration, without sign; None if text is not a duration."""
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            return None
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    return int(total) if text else None


def until_ns(value: str, now_ns: int | None = None) -> int:
    """moby's timetypes.GetTimestamp: unix seconds, a Go duration before now, or RFC3339."""
    now = time.time_ns() if now_ns is None else now_ns
    try:
        return int(float(value) * 1_000_000_000)
    except ValueError:
        pass
    duration = _go_duration_ns(value)
    if duration is not None:
        return now - duration
    text = value
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00Z"
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?", text):
        text += "Z"
    ns = parse_ns(text)
    if not ns:
        raise InvalidParameter(f'failed to parse value as time or duration: "{value}"')
    return ns


def check_filter_keys(filters: dict[str, list[str]], allowed: tuple[str, ...]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidParameter(f"invalid filter '{key}'")


def prune_before_ns(filters: dict[str, list[str]]) -> int | None:
    """A prune's `until` filter as the time before which things go; None without one."""
    untils = filters.get("until", [])
    if len(untils) > 1:
        raise InvalidParameter("more than one until filter specified")
    return until_ns(untils[0]) if untils else None
