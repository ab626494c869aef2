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


def test_a_cancelled_flush_leaves_the_connection_reading(nats_url: str) -> None:
    """A flush cancelled before its PONG (a timeout, or the cancel scope of the request that
    flushed) must not kill the client's read loop: nats-py 2.16 resolves the PONG's future
    without checking it, and a cancelled one raised InvalidStateError there (the gateway then
    got no reply from the engine again)."""

    async def main() -> None:
        nc = await connect(nats_url, "kit-test")
        try:
            for _ in range(3):
                with anyio.CancelScope() as scope:
                    scope.cancel()  # cancelled at its first wait: after the PING went out
                    await nc.flush(timeout=5)
            await anyio.sleep(0.2)  # the PONGs of the cancelled flushes arrive
            sub = await nc.subscribe("still.reading")
            await nc.publish("still.reading", b"x")
            with anyio.fail_after(5):
                msg = await sub.next_msg(timeout=5)
            assert msg.data == b"x"
        finally:
            await nc.close()

    anyio.run(main)
