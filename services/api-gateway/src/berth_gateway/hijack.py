"""Taking over the HTTP connection for attach (moby's hijack: `HTTP/1.1 101 UPGRADED`).

aiohttp has no public hijack, but it has the hook websockets use: after an upgrade request,
RequestHandler.set_parser() receives every later byte the client sends. The gateway installs a
parser that queues those bytes (the container's stdin) and writes the response header block and
the output straight to the transport. Three details need care:

* half-close: the docker CLI shuts down its write side when its stdin ends, and keeps reading
  output. asyncio closes a transport whose protocol's eof_received() returns a false value, so a
  hijacked connection answers True there and reports EOF to the stdin queue instead.
* the response aiohttp writes after the handler returns: a HijackedResponse that writes nothing.
* `Upgrade: tcp` must be seen as an upgrade by the HTTP parser (see __init__ below).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import anyio
from aiohttp import web
from aiohttp.http_parser import HttpRequestParserPy
from aiohttp.web_protocol import MAX_MSG_QUEUE_SIZE, RequestHandler, RequestPayloadError
from aiohttp.web_server import Server

from berth_gateway.headers import COMMON_HEADERS
from berth_gateway.stdcopy import RAW_STREAM

HIJACKED = web.RequestKey("berth.hijacked", bool)


class StdinParser:
    """Receives the client's bytes after the upgrade (the set_parser protocol of aiohttp).

    Nothing is dropped: when more than HIGH_WATER bytes wait for the container, the gateway stops
    reading the socket (TCP back-pressure reaches the client) until the queue drains below
    LOW_WATER. feed_* run as protocol callbacks, outside any task; read() runs in the handler.
    """

    HIGH_WATER = 1024 * 1024
    LOW_WATER = 256 * 1024

    def __init__(self, transport: asyncio.Transport | None) -> None:
        self._transport = transport
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._paused = False
        self._wakeup: anyio.Event | None = None

    @property
    def eof(self) -> bool:
        return self._eof

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data and not self._eof:
            self._chunks.append(data)
            self._size += len(data)
            if self._size > self.HIGH_WATER and not self._paused and self._transport is not None:
                self._paused = True
                self._transport.pause_reading()
            self._wake()
        return False, b""

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def read(self) -> bytes | None:
        """The next chunk the client sent; None once it has half-closed (or gone)."""
        while not self._chunks:
            if self._eof:
                return None
            self._wakeup = anyio.Event()
            await self._wakeup.wait()
            self._wakeup = None
        data = self._chunks.popleft()
        self._size -= len(data)
        if self._paused and self._size < self.LOW_WATER and self._transport is not None:
            self._paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()
        return data


class HijackableRequestHandler(RequestHandler):
    """A RequestHandler that keeps a half-closed connection open once it has been hijacked."""

    def __init__(self, manager: Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        # aiohttp's C parser recognises only websocket upgrades; the pure-Python one also
        # knows `Upgrade: tcp`, so bytes sent right behind the attach request reach stdin.
        self._parser = HttpRequestParserPy(
            self,
            kwargs["loop"],
            kwargs.get("read_bufsize", 2**16),
            max_line_size=kwargs.get("max_line_size", 8190),
            max_field_size=kwargs.get("max_field_size", 8190),
            max_headers=kwargs.get("max_headers", 128),
            payload_exception=RequestPayloadError,
            auto_decompress=kwargs.get("auto_decompress", True),
            max_msg_queue_size=MAX_MSG_QUEUE_SIZE,
        )
        self.hijacked: StdinParser | None = None
        self.early_eof = False

    def resume_reading(self, resume_parser: bool = True) -> None:
        super().resume_reading(resume_parser)
        # aiohttp 3.14's pure-Python payload parser can keep a pause that outlived it: paused
        # while feeding a chunk that ends what the socket delivered, it never clears the flag,
        # and parks the next chunk to arrive instead of passing it on. When that chunk is the
        # client's last, the request body never ends (a `docker load` hung on ~2% of runs).
        # Reading has resumed here, so no pause is wanted.
        payload_parser = getattr(self._parser, "_payload_parser", None)
        if not self._reading_paused and getattr(payload_parser, "_paused", False):
            payload_parser._paused = False  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:  # type: ignore[override]
        if self.hijacked is not None:
            self.hijacked.feed_eof()
            return True  # keep the transport open: output still flows to the client
        if self._upgraded:
            # An upgrade request whose client ended its input before the handler took over:
            # remember it for the hijack, and keep the connection for the answer.
            self.early_eof = True
            return True
        return None


class HijackableServer(Server):
    def __call__(self) -> RequestHandler:
        return HijackableRequestHandler(self, loop=self._loop, **self._kwargs)


class HijackedResponse(web.StreamResponse):
    """What a hijacking handler returns: the bytes were written already, aiohttp adds none."""

    def __init__(self) -> None:
        super().__init__(status=101)

    async def prepare(self, request: web.BaseRequest) -> None:  # type: ignore[override]
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None

    @property
    def keep_alive(self) -> bool:  # type: ignore[override]
        return False  # the connection belongs to the stream; aiohttp closes it afterwards


class Hijacked:
    """The taken-over connection: raw writes with flow control, and the client's stdin."""

    def __init__(self, request: web.Request, stdin: StdinParser | None) -> None:
        self._request = request
        self._transport = request.transport
        self._protocol = request.protocol
        self.stdin = stdin

    @property
    def closed(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    async def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("client went away")
        assert self._transport is not None
        self._transport.write(data)
        # aiohttp's protocol implements asyncio flow control; wait while the buffer is full.
        await self._protocol._drain_helper()

    def close(self) -> None:
        """Close after the buffered output is sent (asyncio's transport.close flushes first)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


def wants_upgrade(request: web.Request) -> bool:
    connection = request.headers.get("Connection", "").lower()
    return "upgrade" in connection and bool(request.headers.get("Upgrade"))


async def hijack(request: web.Request, content_type: str) -> Hijacked:
    """Answer 101 UPGRADED (or 200 OK without an Upgrade header) and take over the socket.

    The header block goes out in its own write and is flushed before any payload: docker-py
    parses it through a buffered reader and would swallow output that arrived with it.
    """
    upgrade = wants_upgrade(request)
    protocol = request.protocol
    stdin: StdinParser | None = None
    if upgrade:
        lines = [
            "HTTP/1.1 101 UPGRADED",
            f"Content-Type: {content_type}",
            "Connection: Upgrade",
            "Upgrade: tcp",
        ]
    else:
        # Without an upgrade moby answers 200 and says raw-stream whatever the framing is.
        lines = ["HTTP/1.1 200 OK", f"Content-Type: {RAW_STREAM}"]
    lines += [f"{name}: {value}" for name, value in COMMON_HEADERS.items()]
    block = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if upgrade and isinstance(protocol, HijackableRequestHandler):
        stdin = StdinParser(request.transport)  # type: ignore[arg-type]
        protocol.hijacked = stdin
        protocol.set_parser(stdin)  # type: ignore[arg-type]
        if protocol.early_eof:
            stdin.feed_eof()
    conn = Hijacked(request, stdin)
    request[HIJACKED] = True
    # transport.write sends at once when nothing is queued, so the block leaves in its own
    # send(); output written later cannot share its segment unless the client reads slowly.
    await conn.write(block)
    return conn
