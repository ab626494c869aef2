"""EventHistory with times no client sends but the bus may carry (found by test_fuzz_rpc)."""

from __future__ import annotations

import anyio
import pytest
from berth_contracts.errors import InvalidParameter
from berth_contracts.eventlog import EventHistory
from berth_engine.eventlog import EventLog


def test_huge_and_infinite_times_are_clamped_nan_refused() -> None:
    log = EventLog()

    async def main() -> None:
        for since, until in ((1e300, 0.0), (float("inf"), 0.0), (-1e300, 1e300)):
            assert (await log.history(EventHistory(since=since, until=until))).events == []
        with pytest.raises(InvalidParameter, match="invalid value for since: NaN"):
            await log.history(EventHistory(since=float("nan")))

    anyio.run(main)
