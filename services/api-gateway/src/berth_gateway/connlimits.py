"""Per-connection limits of the API server, as Go's net/http gives dockerd:

- headers: a request's header section may take at most MAX_HEADER_BYTES (Go's
  DefaultMaxHeaderBytes, 1 MiB); over it the answer is Go's `431 Request Header Fields Too
  Large` and the connection closes (aiohttp alone bounds each line and the line count only);
- header time: a connection that has not completed a request's headers within HEADER_TIMEOUT
  (from its first byte, or from the connection's start) is closed, as with http.Server's
  ReadHeaderTimeout, so slow or silent clients cannot hold connections open;
- connections: at most MAX_CONNECTIONS open at once; past it a new one is answered 503 and
  closed, before it costs a handler.

Each is settable in the environment: BERTH_API_MAX_HEADER_BYTES, BERTH_API_HEADER_TIMEOUT
(seconds), BERTH_API_MAX_CONNECTIONS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, cast

from aiohttp.web_protocol import RequestHandler

from berth_gateway.hijack import HijackableRequestHandler, HijackableServer

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = int(os.environ.get("BERTH_API_MAX_HEADER_BYTES", 1 << 20))
HEADER_TIMEOUT = float(os.environ.get("BERTH_API_HEADER_TIMEOUT", 60))
MAX_CONNECTIONS = int(os.environ.get("BERTH_API_MAX_CONNECTIONS", 2048))

CLOSE_DELAY = 0.5  # Go's rstAvoidanceDelay
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n431 Request Header Fields Too Large"
)


def _unavailable(message: str) -> bytes:
    body = json.dumps({"message": message}).encode() + b"\n"
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class LimitedRequestHandler(HijackableRequestHandler):
    def __init__(self, manager: Any, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_bytes = 0  # received since the last request's headers were complete
        self._header_tail = b""  # the last bytes of those, where a blank line may begin
        self._header_timer: asyncio.TimerHandle | None = None
        self._requests_seen = 0
        self.rejected = False  # answered and closing: what still arrives is read and dropped

    def _awaiting_headers(self) -> bool:
        """Between requests, or within a request's headers (not in a body, not hijacked)."""
        parser_body = getattr(self._parser, "_payload_parser", None)
        return (
            parser_body is None
            and self._payload_parser is None
            and not self._upgraded
            and self.hijacked is None
        )

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self._loop.call_later(HEADER_TIMEOUT, self._header_timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and self._request_count == self._requests_seen and self.transport:
            log.info("closing a connection that sent no complete headers within %.0fs", HEADER_TIMEOUT)
            self.force_close()
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.rejected:
            self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def reject(self, answer: bytes) -> None:
        """Answer `answer` and close; aiohttp's own close would come at once and, with the
        client's bytes unread, reset the connection and lose the answer."""
        self.rejected = True
        self._disarm()
        if self.transport is not None:
            _answer_and_close(self._loop, self.transport, answer)

    def data_received(self, data: bytes) -> None:
        if self.rejected:
            return
        if not self._awaiting_headers():
            super().data_received(data)
            return
        self._arm()
        # Counted before the parser sees the bytes: a chunk that ends the headers would
        # otherwise have the request served however long they were.
        if self._header_bytes + self._header_part(data) > MAX_HEADER_BYTES:
            self.reject(_TOO_LARGE)
            return
        super().data_received(data)
        if self._request_count != self._requests_seen:  # a request's headers are complete
            self._requests_seen = self._request_count
            self._header_bytes = 0
            self._header_tail = b""
            self._disarm()
            return
        self._header_bytes += len(data)
        self._header_tail = data[-3:]

    def _header_part(self, data: bytes) -> int:
        """How many of `data`'s bytes belong to the headers being read: up to their blank
        line, which may have begun in the previous chunk."""
        end = (self._header_tail + data).find(b"\r\n\r\n")
        return len(data) if end < 0 else max(0, end + 4 - len(self._header_tail))


def _answer_and_close(loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport, answer: bytes) -> None:
    """Write `answer`, half-close, and close a little later (Go's closeWriteAndWait)."""
    tr = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
    tr.write(answer)
    if tr.can_write_eof():
        tr.write_eof()
    if not tr.is_reading():  # aiohttp may have paused it: drain what the client still sends
        tr.resume_reading()
    loop.call_later(CLOSE_DELAY, tr.close)


class LimitedServer(HijackableServer):
    def __call__(self) -> RequestHandler:
        return LimitedRequestHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) > MAX_CONNECTIONS and isinstance(handler, LimitedRequestHandler):
            log.warning("refusing a connection: %d open (BERTH_API_MAX_CONNECTIONS)", MAX_CONNECTIONS)
            message = f"too many connections: the limit is {MAX_CONNECTIONS} (BERTH_API_MAX_CONNECTIONS)"
            handler.reject(_unavailable(message))
