from __future__ import annotations

import pytest
from berth_common.gotime import ZERO_TIME, is_zero, parse_ns, rfc3339nano

# (unix nanoseconds, what Go's t.UTC().Format(time.RFC3339Nano) prints)
GO_OUTPUTS = [
    # Go's own time/format_test.go: time.Unix(0, 1233810057012345600), there shown at -08:00.
    (1_233_810_057_012_345_600, "2009-02-05T05:00:57.0123456Z"),
    # time.Time{}: dockerd's FinishedAt of a container that never ran.
    (-62_135_596_800 * 10**9, ZERO_TIME),
    (0, "1970-01-01T00:00:00Z"),
    (1_700_000_000 * 10**9, "2023-11-14T22:13:20Z"),  # no fraction: no dot
    (1_700_000_000_500_000_000, "2023-11-14T22:13:20.5Z"),
    (1_700_000_000_120_000_000, "2023-11-14T22:13:20.12Z"),
    (1_700_000_000_000_000_001, "2023-11-14T22:13:20.000000001Z"),
    (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
]


@pytest.mark.parametrize(("ns", "go"), GO_OUTPUTS)
def test_rfc3339nano_prints_what_go_prints(ns: int, go: str) -> None:
    assert rfc3339nano(ns) == go


@pytest.mark.parametrize(("ns", "go"), GO_OUTPUTS[2:])
def test_parse_ns_reads_it_back(ns: int, go: str) -> None:
    assert parse_ns(go) == ns


def test_parse_ns_offsets_and_garbage() -> None:
    assert parse_ns("2009-02-04T21:00:57.0123456-08:00") == 1_233_810_057_012_345_600
    assert parse_ns("2023-11-14T23:13:20+01:00") == 1_700_000_000 * 10**9
    for bad in ("", "garbage", "2023-11-14T22:13:20Z\n", "2023-13-14T22:13:20Z", ZERO_TIME):
        assert parse_ns(bad) == 0
    assert is_zero(ZERO_TIME) and not is_zero("2023-11-14T22:13:20Z")
