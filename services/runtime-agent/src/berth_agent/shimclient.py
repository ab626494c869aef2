"""The agent's client of one shim: its unix socket, frames in (shim.proto), calls and replies.

`call` sends a command and waits for its reply; a failed reply raises shim.proto.ShimError
with the shim's error kind, which the caller maps to a Docker error (runcerrors.py).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from berth_agent.shim import proto
from berth_agent.shim.frames import Hello, Reply

log = logging.getLogger(__name__)

FrameHandler = Callable[[dict[str, Any]], Awaitable[None]]
CONNECT_TIMEOUT = 5.0


class ShimGone(Exception):
    """The shim closed its connection (it exited, or the agent lost it)."""


class ShimClient:
    def __init__(
        self, stream: SocketStream, hello: Hello, reader: BufferedByteReceiveStream
    ) -> None:
        self._stream = stream
        self._reader = reader
        self.hello = hello
        self._rids = itertools.count(1)
        self._pending: dict[int, tuple[anyio.Event, list[Reply]]] = {}
        self._send_lock = anyio.Lock()
        self.closed = anyio.Event()

    @classmethod
    async def connect(cls, path: str, wait_for: float = CONNECT_TIMEOUT) -> ShimClient:
        with anyio.fail_after(wait_for):
            stream = await anyio.connect_unix(path)
            reader = BufferedByteReceiveStream(stream)
            try:
                hello = proto.decode(await reader.receive_until(b"\n", proto.MAX_LINE))
            except BaseException:
                await stream.aclose()
                raise
        if hello.get("t") != "hello":
            await stream.aclose()
            raise ShimGone(f"unexpected first frame from shim: {hello.get('t')!r}")
        return cls(stream, hello, reader)  # type: ignore[arg-type]  # checked: t == hello

    async def run(self, on_frame: FrameHandler) -> None:
        """Read frames until the shim goes away; replies wake their callers, the rest go to on_frame."""
        try:
            while True:
                try:
                    line = await self._reader.receive_until(b"\n", proto.MAX_LINE)
                except (
                    anyio.EndOfStream,
                    anyio.IncompleteRead,
                    anyio.BrokenResourceError,
                    anyio.ClosedResourceError,
                    OSError,
                ):
                    return
                try:
                    frame = proto.decode(line)
                except ValueError:
                    log.warning("undecodable frame from shim")
                    continue
                if frame.get("t") == "reply":
                    waiter = self._pending.pop(int(frame.get("rid", 0)), None)
                    if waiter is not None:
                        waiter[1].append(frame)  # type: ignore[arg-type]  # t == reply
                        waiter[0].set()
                    continue
                await on_frame(frame)
        finally:
            self.closed.set()
            for event, _ in self._pending.values():
                event.set()
            self._pending.clear()
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()

    async def send(self, frame: Mapping[str, Any]) -> None:
        async with self._send_lock:
            try:
                await self._stream.send(proto.encode(frame))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise ShimGone("shim connection lost") from exc

    async def call(self, frame: Mapping[str, Any], wait_for: float = 60.0) -> Reply:
        """Send a command and wait for its reply; raises ShimError when the shim refused it or
        runc failed, ShimGone, TimeoutError."""
        if self.closed.is_set():
            raise ShimGone("shim connection lost")
        rid = next(self._rids)
        event = anyio.Event()
        box: list[Reply] = []
        self._pending[rid] = (event, box)
        try:
            await self.send({**frame, "rid": rid})
            with anyio.fail_after(wait_for):
                await event.wait()
        finally:
            self._pending.pop(rid, None)
        if not box:
            raise ShimGone("shim connection lost")
        reply = box[0]
        if not reply.get("ok"):
            raise proto.ShimError(reply.get("kind", proto.UNKNOWN), reply.get("error", ""))
        return reply

    async def aclose(self) -> None:
        await self._stream.aclose()
