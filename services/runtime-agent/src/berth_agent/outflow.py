"""Flow control of container output: a stream is paused while its readers lag.

NATS has no back-pressure: a publisher never learns that a subscriber's buffer is full, and a
bounded subscription drops what does not fit. So readers (the gateway's attach and exec
streams) acknowledge what they have delivered to their client (StdioAck on
subjects.stdio_ack(id), offsets from StdioChunk.offset), and the agent tells the shim to stop
reading a stream's pipes ("opause") while it is more than WINDOW bytes ahead of its slowest
reader, and to go on ("oresume") once that reader is back within RESUME_AT. The process
then blocks in write(2), as a Docker container does behind a slow `docker attach`: a slow
client slows the container instead of losing its output, and no buffer on the way holds more
than about a window of it.

Readers register with offset -1 (at the current position) before the process starts, repeat
their ack while they stay, and leave with done=True. A reader not heard from for
READER_TIMEOUT (its gateway died) is forgotten, so it cannot hold a container for ever. A
stream nobody reads is never paused: the json-file log takes everything.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup
from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.streams import StdioAck
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)

WINDOW = 4 * 1024 * 1024  # output in flight past the slowest reader before the stream pauses
RESUME_AT = WINDOW // 2
# Chunks count too: a subscription's pending limits are in messages as well as bytes, and a
# process writing a byte at a time makes chunks of a byte.
WINDOW_CHUNKS = 2048
READER_TIMEOUT = 30.0  # readers ack at least every few seconds (gateway outputcredit.py)
SWEEP_INTERVAL = 2.0

# (stream id, pause) -> tell the shim to stop / go on reading that stream's pipes
Hold = Callable[[str, bool], Awaitable[None]]


@dataclass
class _Reader:
    acked: int
    seen: float


@dataclass
class _Stream:
    published: int = 0  # end offset of the last chunk published
    readers: dict[str, _Reader] = field(default_factory=dict)
    held: bool = False
    ends: deque[int] = field(default_factory=deque)  # end offsets of chunks not acked by all

    def lag(self) -> tuple[int, int]:
        """Bytes and chunks published past the slowest reader."""
        if not self.readers:
            self.ends.clear()
            return 0, 0
        acked = min(r.acked for r in self.readers.values())
        while self.ends and self.ends[0] <= acked:
            self.ends.popleft()
        return self.published - acked, len(self.ends)


class OutputFlow:
    def __init__(self, nc: NATS, hold: Hold) -> None:
        self._nc = nc
        self._hold = hold
        self._streams: dict[str, _Stream] = {}
        self._sub: Subscription | None = None
        self._sweeper = anyio.CancelScope()

    async def start(self, tg: TaskGroup) -> None:
        self._sub = await self._nc.subscribe(subjects.stdio_ack("*"), cb=self._on_msg)
        tg.start_soon(self._sweep)

    async def stop(self) -> None:
        self._sweeper.cancel()
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # the connection may be closed already
                await sub.unsubscribe()

    async def published(self, stream_id: str, end: int) -> None:
        """A chunk ending at offset end went out on the stream."""
        stream = self._streams.setdefault(stream_id, _Stream())
        stream.published = max(stream.published, end)
        if stream.readers:
            stream.ends.append(end)
        await self._update(stream_id, stream)

    def ended(self, stream_id: str) -> None:
        """The eof went out: the run is over (a next run counts from 0 again)."""
        self._streams.pop(stream_id, None)

    async def _on_msg(self, msg: Msg) -> None:
        stream_id = msg.subject.split(".")[-2]
        try:
            ack = decode(msg.data, StdioAck)
        except Exception:  # noqa: BLE001 - garbage on the subject is ignored
            return
        stream = self._streams.setdefault(stream_id, _Stream())
        if ack.done:
            stream.readers.pop(ack.reader, None)
        else:
            reader = stream.readers.get(ack.reader)
            if reader is None:
                start = stream.published if ack.offset < 0 else ack.offset
                stream.readers[ack.reader] = _Reader(acked=start, seen=time.monotonic())
            else:
                reader.acked = max(reader.acked, ack.offset)
                reader.seen = time.monotonic()
        await self._update(stream_id, stream)

    async def _update(self, stream_id: str, stream: _Stream) -> None:
        lag, chunks = stream.lag()
        if not stream.held and (lag > WINDOW or chunks > WINDOW_CHUNKS):
            stream.held = True
            await self._hold(stream_id, True)
        elif stream.held and lag <= RESUME_AT and chunks <= WINDOW_CHUNKS // 2:
            stream.held = False
            await self._hold(stream_id, False)

    async def _sweep(self) -> None:
        with self._sweeper:
            while True:
                await anyio.sleep(SWEEP_INTERVAL)
                await self.expire(time.monotonic() - READER_TIMEOUT)

    async def expire(self, before: float) -> None:
        """Forget readers last heard from before the given time (monotonic clock)."""
        for stream_id, stream in list(self._streams.items()):
            gone = [rid for rid, r in stream.readers.items() if r.seen < before]
            for rid in gone:
                log.warning("output reader %s of %s went silent; forgotten", rid, stream_id[:12])
                del stream.readers[rid]
            if not stream.readers and not stream.published and not stream.held:
                del self._streams[stream_id]
            elif gone:
                await self._update(stream_id, stream)
