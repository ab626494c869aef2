"""berth_kit.nats_conn against a real nats-server."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anyio
import pytest
from berth_kit.nats_conn import connect
from berth_kit.testing import nats_server


@pytest.fixture(scope="module")
def nats_url() -> Iterator[str]:
    with nats_server() as url:
        yield url


def test_a_slow_consumer_drops_messages_with_one_warning(
    nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A subscription over its pending limits drops messages (bounded memory) and says so once."""

    async def main() -> int:
        nc = await connect(nats_url, "kit-test")
        try:
            sub = await nc.subscribe("slow.test", pending_msgs_limit=10, pending_bytes_limit=10_000)
            for _ in range(100):
                await nc.publish("slow.test", b"x" * 1000)
            # The server answers the flush's PING after delivering every message published
            # before it, on this same connection: all 100 were handled (kept or dropped).
            await nc.flush(timeout=10)
            pending = sub.pending_msgs
            # nats-py reports a slow consumer through its error callback on a task of its own:
            # wait for that task before closing (closing first can lose the report).
            with anyio.fail_after(10):
                while not _slow_warnings(caplog):  # noqa: ASYNC110 - a log record, not an event
                    await anyio.sleep(0.01)
            return pending
        finally:
            await nc.close()

    with caplog.at_level(logging.WARNING, logger="berth_kit.nats_conn"):
        pending = anyio.run(main)
    assert pending < 100
    assert len(_slow_warnings(caplog)) == 1, caplog.text


def _slow_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "slow consumer on slow.test" in r.getMessage()]
