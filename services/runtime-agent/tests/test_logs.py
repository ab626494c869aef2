"""TaskLogs: replay and follow of the json-file log, as LogBatch messages."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import anyio
import pytest
from agent_testlib import Client, spec
from berth_contracts.agent import TaskLogs
from berth_contracts.base import Done
from berth_contracts.codec import decode
from berth_contracts.streams import LogBatch, LogLine
from nats.aio.msg import Msg

pytestmark = pytest.mark.anyio


def new_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


async def fetch_logs(c: Client, cid: str, **kw: object) -> list[LogLine]:
    inbox = c.nc.new_inbox()
    lines: list[LogLine] = []
    done = anyio.Event()

    async def on_batch(msg: Msg) -> None:
        batch = decode(msg.data, LogBatch)
        assert batch.error == ""
        lines.extend(batch.lines)
        if batch.end:
            done.set()

    sub = await c.nc.subscribe(inbox, cb=on_batch)
    await c.nc.flush()
    await c.call(TaskLogs(container_id=cid, stream_subject=inbox, **kw), Done)  # type: ignore[arg-type]
    with anyio.fail_after(20):
        await done.wait()
    await sub.unsubscribe()
    return lines


async def test_logs_filters_tail_follow(c: Client, rootfs: Path) -> None:
    cid = new_id()
    script = "for i in 1 2 3; do echo out$i; echo err$i >&2; done; printf partial"
    await c.run(cid, rootfs, spec("sh", "-c", script))
    await c.wait_exit(cid)

    everything = await fetch_logs(c, cid)
    assert sorted(ln.data for ln in everything) == sorted(
        [b"out1\n", b"out2\n", b"out3\n", b"err1\n", b"err2\n", b"err3\n", b"partial"]
    )
    assert {ln.stream for ln in everything} == {1, 2}
    out_only = await fetch_logs(c, cid, stderr=False)
    assert [ln.data for ln in out_only] == [b"out1\n", b"out2\n", b"out3\n", b"partial"]
    tail = await fetch_logs(c, cid, tail=2, stderr=False)
    assert [ln.data for ln in tail] == [b"partial"]  # tail counts records of both streams
    assert await fetch_logs(c, cid, tail=0) == []
    assert await fetch_logs(c, cid, until=time.time() - 3600) == []
    assert len(await fetch_logs(c, cid, since=time.time() - 3600)) == 7
    assert await fetch_logs(c, new_id()) == []  # unknown container: just the end

    # follow: output produced after the request arrives, and the stream ends at exit.
    cid = new_id()
    script = "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second"
    await c.run(cid, rootfs, spec("sh", "-c", script))
    inbox = c.nc.new_inbox()
    lines: list[LogLine] = []
    got_first = anyio.Event()
    ended = anyio.Event()

    async def on_batch(msg: Msg) -> None:
        batch = decode(msg.data, LogBatch)
        lines.extend(batch.lines)
        if lines:
            got_first.set()
        if batch.end:
            ended.set()

    await c.nc.subscribe(inbox, cb=on_batch)
    await c.call(TaskLogs(container_id=cid, stream_subject=inbox, follow=True), Done)
    with anyio.fail_after(20):
        await got_first.wait()
        assert not ended.is_set()  # still running: the stream stays open
        (rootfs / "tmp" / "go").touch()  # noqa: ASYNC240
        await ended.wait()
    assert [ln.data for ln in lines] == [b"first\n", b"second\n"]


def test_follow_stops_when_the_reader_is_gone(nats_url: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from berth_agent import logs
    from berth_kit.nats_conn import connect

    monkeypatch.setattr(logs, "LISTENER_PROBE_INTERVAL", 0.2)
    path = tmp_path / "c-json.log"
    path.write_text('{"log":"a\\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}\n')

    async def main() -> None:
        nc = await connect(nats_url, "logs-test")
        try:
            inbox = nc.new_inbox()
            got: list[LogBatch] = []

            async def on_batch(msg: Msg) -> None:
                got.append(decode(msg.data, LogBatch))

            sub = await nc.subscribe(inbox, cb=on_batch)
            cmd = TaskLogs(container_id="c", stream_subject=inbox, follow=True)

            async def reader_leaves() -> None:
                await anyio.sleep(1.0)  # several probes while the reader is there: still following
                assert [ln.data for b in got for ln in b.lines] == [b"a\n"]
                assert not any(b.end for b in got)
                await sub.unsubscribe()

            async with anyio.create_task_group() as tg:
                tg.start_soon(reader_leaves)
                with anyio.fail_after(10):  # the next probe meets "no responders": it returns
                    await logs.stream_logs(nc, cmd, path, lambda: True)
        finally:
            await nc.close()

    anyio.run(main)
