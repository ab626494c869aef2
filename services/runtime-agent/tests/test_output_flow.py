"""Flow control of output (outflow.py, shim_gate.py) and of log replays (logs.py pacing).

A reader that does not acknowledge holds the container's output at about a window; once it
acknowledges, every byte arrives, in order, with contiguous offsets. A log replay whose
checkpoints are not answered stops after two windows and goes on once they are.
"""

from __future__ import annotations

import os
import selectors
import uuid
from pathlib import Path

import anyio
import pytest
from agent_testlib import Client, spec
from berth_agent.logs import CHECKPOINT_BATCHES
from berth_agent.outflow import WINDOW
from berth_agent.shim.gate import OutputGate
from berth_contracts import subjects
from berth_contracts.agent import TaskGet, TaskLogs, TaskState
from berth_contracts.base import Done
from berth_contracts.codec import decode, encode
from berth_contracts.streams import LogBatch, StdioAck, StdioChunk
from nats.aio.msg import Msg

pytestmark = pytest.mark.anyio

COUNT = 3_000_000  # `seq 1 COUNT`: 22,888,897 bytes, several windows
EXPECTED = b"".join(b"%d\n" % i for i in range(1, COUNT + 1))
SETTLE = 2.0  # output that grew nothing for this long has stopped


def new_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


async def test_unacknowledged_reader_holds_output_then_gets_all(c: Client, rootfs: Path) -> None:
    cid = new_id()
    chunks: list[StdioChunk] = []
    eof = anyio.Event()

    async def on_chunk(msg: Msg) -> None:
        chunk = decode(msg.data, StdioChunk)
        chunks.append(chunk)
        if chunk.eof:
            eof.set()

    await c.nc.subscribe(subjects.stdio_out(cid), cb=on_chunk)
    ack_subject = subjects.stdio_ack(cid)
    await c.nc.publish(ack_subject, encode(StdioAck(reader="r1", offset=-1)))
    await c.nc.flush()
    await c.run(cid, rootfs, spec("seq", "1", str(COUNT)))

    # Without acks the output stops: wait until it stops growing (or ends, unpaced).
    held = -1
    while not eof.is_set() and held != sum(len(ch.data) for ch in chunks):
        held = sum(len(ch.data) for ch in chunks)
        await anyio.sleep(SETTLE)
    state = await c.call(TaskGet(container_id=cid), TaskState)
    # Paused at the window (plus what was already on its way), the process blocked.
    assert not eof.is_set(), "the output ran to its end without any acknowledgement"
    assert held < WINDOW + 4 * 1024 * 1024, held
    assert state.status == "running"

    with anyio.fail_after(120):
        while not eof.is_set():
            got = sum(len(ch.data) for ch in chunks)
            await c.nc.publish(ack_subject, encode(StdioAck(reader="r1", offset=got)))
            await anyio.sleep(0.05)
    await c.nc.publish(ack_subject, encode(StdioAck(reader="r1", offset=0, done=True)))
    data = [ch for ch in chunks if not ch.eof]
    assert b"".join(ch.data for ch in data) == EXPECTED
    offsets = [ch.offset for ch in data]
    ends = [ch.offset + len(ch.data) for ch in data]
    assert offsets == [0, *ends[:-1]]  # contiguous: nothing lost, nothing repeated
    await c.wait_exit(cid)
    await c.delete(cid)


async def test_output_without_readers_is_never_held(c: Client, rootfs: Path) -> None:
    """`docker run -d`: nobody acknowledges, the log takes it all, the process never waits."""
    cid = new_id()
    out = await c.collect_output(cid)
    await c.run(cid, rootfs, spec("seq", "1", str(COUNT)))
    await out.wait_eof(120)
    assert out.data(1) == EXPECTED
    await c.wait_exit(cid)
    await c.delete(cid)


async def test_log_replay_waits_for_its_reader(c: Client, rootfs: Path) -> None:
    cid = new_id()
    await c.run(cid, rootfs, spec("seq", "1", str(COUNT)))
    await c.wait_exit(cid, 120)
    inbox = c.nc.new_inbox()
    batches: list[Msg] = []
    ended = anyio.Event()

    async def on_batch(msg: Msg) -> None:
        batches.append(msg)
        if decode(msg.data, LogBatch).end:
            ended.set()

    await c.nc.subscribe(inbox, cb=on_batch)
    await c.nc.flush()
    await c.call(TaskLogs(container_id=cid, stream_subject=inbox), Done)
    await anyio.sleep(SETTLE)
    # Nothing answered: the first checkpoint and the window behind it, no more.
    assert len(batches) <= 2 * CHECKPOINT_BATCHES, len(batches)
    answered = 0
    with anyio.fail_after(120):
        while not ended.is_set():
            for msg in batches[answered:]:
                if msg.reply and decode(msg.data, LogBatch).lines:
                    await msg.respond(b"")
            answered = len(batches)
            await anyio.sleep(0.05)
    lines = [ln for m in batches for ln in decode(m.data, LogBatch).lines]
    assert b"".join(ln.data for ln in lines) == EXPECTED
    await c.delete(cid)


def test_gate_stops_reading_held_streams_until_exit() -> None:
    sel = selectors.DefaultSelector()
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        gate = OutputGate(sel)
        gate.add(r1, "", "pipe")
        gate.add(r2, "e1", ("xpipe", "e1"))
        assert set(sel.get_map()) == {r1, r2}
        gate.hold("", True)
        assert set(sel.get_map()) == {r2}  # only the held stream waits
        gate.set_backlog(True)
        assert set(sel.get_map()) == set()  # the agent lags: nothing is read
        gate.set_backlog(False)
        gate.exited("")
        assert set(sel.get_map()) == {r1, r2}  # an exited process's rest is always read
        assert (gate.advance("e1", 10), gate.advance("e1", 5)) == (0, 10)
        gate.hold("e1", True)
        gate.reset()  # a new agent: old pauses are gone
        assert set(sel.get_map()) == {r1, r2}
        gate.remove(r1)
        assert set(sel.get_map()) == {r2}
    finally:
        for fd in (r1, w1, r2, w2):
            os.close(fd)
        sel.close()
