"""An error after a response has started ends that response; it never becomes a second one."""

from __future__ import annotations

import os
import socket
import tempfile

import anyio
import pytest
from aiohttp import web
from berth_contracts.errors import InternalError, NotFound
from berth_gateway.errors import error_middleware
from berth_gateway.headers import add_common_headers
from berth_gateway.hijack import hijack
from berth_gateway.server import GatewayRunner
from berth_gateway.stdcopy import RAW_STREAM

pytestmark = pytest.mark.anyio


async def _stream_then_fail(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(b'{"n":1}\n')
    raise InternalError("the log stream broke")


async def _hijack_then_fail(request: web.Request) -> web.StreamResponse:
    conn = await hijack(request, RAW_STREAM)
    await conn.write(b"partial")
    raise InternalError("the output stream broke")


async def _fail_before(request: web.Request) -> web.StreamResponse:
    raise NotFound("No such container: x")


def _exchange(path: str, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


async def test_errors_before_and_after_the_answer_started() -> None:
    app = web.Application(middlewares=[error_middleware])
    app.on_response_prepare.append(add_common_headers)
    app.router.add_get("/stream", _stream_then_fail)
    app.router.add_post("/attach", _hijack_then_fail)
    app.router.add_get("/missing", _fail_before)
    runner = GatewayRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "e.sock")
        await web.UnixSite(runner, path).start()
        try:
            stream = await anyio.to_thread.run_sync(
                _exchange, path, b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            hijacked = await anyio.to_thread.run_sync(
                _exchange,
                path,
                b"POST /attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            )
            missing = await anyio.to_thread.run_sync(
                _exchange, path, b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
        finally:
            await runner.cleanup()
    # The started stream is ended properly (chunked terminator), with no second status line.
    assert stream.startswith(b"HTTP/1.1 200 OK")
    assert stream.count(b"HTTP/1.1") == 1
    assert stream.endswith(b'{"n":1}\n\r\n0\r\n\r\n')
    # The hijacked connection is closed after what was written; nothing is appended.
    assert hijacked.startswith(b"HTTP/1.1 101 UPGRADED")
    assert hijacked.endswith(b"\r\n\r\npartial")
    # Before anything was sent, the error is the answer.
    assert missing.startswith(b"HTTP/1.1 404 Not Found")
    assert missing.endswith(b'{"message":"No such container: x"}')
