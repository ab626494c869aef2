"""Go's time formats as Docker shows them: RFC3339Nano strings and go-units' HumanDuration."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from berth_contracts.docker import ZERO_TIME

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)


def rfc3339nano(ns: int | None = None) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds with trailing zeros trimmed."""
    if ns is None:
        ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{frac:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def parse_ns(text: str) -> int:
    """Unix nanoseconds of an RFC3339(Nano) string; 0 for the zero time or anything unparsable."""
    if not text or text == ZERO_TIME:
        return 0
    m = _RFC3339.match(text)
    if not m:
        return 0
    year, month, day, hour, minute, sec, frac, zone = m.groups()
    dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec), tzinfo=UTC)
    ns = int(dt.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 1_000_000_000
        ns -= sign * offset
    return ns


def is_zero(text: str) -> bool:
    return parse_ns(text) == 0


def human_duration(seconds_f: float) -> str:
    """go-units HumanDuration."""
    seconds = int(seconds_f)
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds_f / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds_f / 3600) // 24 // 365} years"
