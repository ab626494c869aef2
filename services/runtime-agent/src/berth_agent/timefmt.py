"""RFC3339Nano timestamps as Go formats them (trailing zeros of the fraction trimmed). Stdlib only."""

from __future__ import annotations

import time


def rfc3339nano(ns: int | None = None) -> str:
    """UTC time as Go's time.RFC3339Nano renders it, e.g. 2024-05-01T10:00:00.1234Z."""
    if ns is None:
        ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


def parse_rfc3339nano(text: str) -> float:
    """Seconds since the epoch of an RFC3339(Nano) UTC timestamp ("...Z"); 0.0 if unparsable."""
    import calendar

    try:
        head, _, rest = text.partition(".")
        if not rest:
            head = head.rstrip("Z")
            frac = 0.0
        else:
            digits = rest.rstrip("Z")
            frac = int(digits) / (10 ** len(digits)) if digits else 0.0
        secs = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
        return secs + frac
    except (ValueError, OverflowError):
        return 0.0
