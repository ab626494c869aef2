"""Go's time.RFC3339Nano as dockerd prints every timestamp (Created, StartedAt, log `time`,
Stats `read`): UTC with `Z`, the fraction's trailing zeros trimmed and no dot when it is zero."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

# Go's zero time.Time, which dockerd prints for "never" (FinishedAt of a container never run).
ZERO_TIME = "0001-01-01T00:00:00Z"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})", re.ASCII
)


def rfc3339nano(ns: int | None = None) -> str:
    """Unix nanoseconds (default: now) as Go's time.RFC3339Nano in UTC."""
    if ns is None:
        ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    # Not strftime: glibc prints year 1 (Go's zero time) as "1", Go as "0001".
    t = _EPOCH + timedelta(seconds=secs)
    base = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    fraction = f"{frac:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def parse_ns(text: str) -> int:
    """Unix nanoseconds of an RFC3339(Nano) string; 0 for the zero time or anything unparsable."""
    if not text or text == ZERO_TIME:
        return 0
    m = _RFC3339.fullmatch(text)
    if not m:
        return 0
    year, month, day, hour, minute, sec, frac, zone = m.groups()
    try:
        dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec), tzinfo=UTC)
    except ValueError:  # month 13, second 61, ...
        return 0
    delta = dt - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 1_000_000_000
        ns -= sign * offset
    return ns


def is_zero(text: str) -> bool:
    return parse_ns(text) == 0
