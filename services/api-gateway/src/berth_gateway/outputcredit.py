"""The reader's side of output flow control (the agent's side: runtime-agent outflow.py).

NATS has no back-pressure, so a reader that relays a container's or an exec's output to a
client acknowledges what the client has taken (StdioAck on subjects.stdio_ack(id)): the agent
pauses the process's output while it is more than a window ahead of the slowest reader. The
subscription therefore never holds more than about that window, and a slow client slows the
container (as with dockerd) instead of losing output to a full buffer.

A reader registers (offset -1, "from where the stream is now") before the process can start,
acks every ACK_EVERY bytes delivered and every HEARTBEAT seconds (or the agent forgets it; an
ack from a forgotten reader registers it again), and says done when it leaves. Chunk offsets
also show output lost upstream (a shim drops live output while no agent is connected): that
is logged, never hidden.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

import anyio
from berth_contracts import subjects
from berth_contracts.codec import encode
from berth_contracts.streams import StdioAck, StdioChunk
from nats.aio.client import Client as NATS

log = logging.getLogger(__name__)

ACK_EVERY = 256 * 1024  # well under the agent's window (4 MiB), so a fast reader never pauses
ACK_EVERY_CHUNKS = 256  # likewise for its window of 2048 chunks (tiny writes make tiny chunks)
HEARTBEAT = 5.0  # the agent forgets a reader silent for 30 s
LEAVE_TIMEOUT = 5.0


class OutputCredit:
    def __init__(self, nc: NATS, stream_id: str) -> None:
        self._nc = nc
        self._subject = subjects.stdio_ack(stream_id)
        self._stream_id = stream_id
        self._reader = uuid.uuid4().hex
        self._delivered = -1  # end offset of what the client has; -1: nothing yet
        self._acked = -1
        self._unacked_chunks = 0

    async def register(self) -> None:
        """Before the process can start: the agent counts this reader from the first byte."""
        await self._send(StdioAck(reader=self._reader, offset=-1))

    async def delivered(self, chunk: StdioChunk) -> None:
        """The chunk was written to the client (or skipped: a stream it did not ask for)."""
        if chunk.eof:
            return
        if 0 <= self._delivered < chunk.offset:
            log.warning(
                "output of %s: %d bytes lost before the gateway (no agent was connected)",
                self._stream_id[:12],
                chunk.offset - self._delivered,
            )
        self._delivered = chunk.offset + len(chunk.data)
        self._unacked_chunks += 1
        if (
            self._delivered - max(self._acked, 0) >= ACK_EVERY
            or self._unacked_chunks >= ACK_EVERY_CHUNKS
        ):
            await self._ack()

    async def heartbeat(self) -> None:
        """Ack now and every HEARTBEAT seconds until cancelled (run beside the relay)."""
        while True:
            await self._ack()
            await anyio.sleep(HEARTBEAT)

    async def leave(self) -> None:
        """Stop counting this reader (without it, the agent forgets it after a while)."""
        done = StdioAck(reader=self._reader, offset=self._delivered, done=True)
        with anyio.CancelScope(shield=True), anyio.move_on_after(LEAVE_TIMEOUT):
            with contextlib.suppress(Exception):  # NATS gone: the agent times the reader out
                await self._send(done)

    async def _ack(self) -> None:
        self._acked, self._unacked_chunks = self._delivered, 0
        await self._send(StdioAck(reader=self._reader, offset=self._delivered))

    async def _send(self, ack: StdioAck) -> None:
        await self._nc.publish(self._subject, encode(ack))
