"""Chunked request bodies through the gateway's connection handler, over a real unix socket.

The case: the client sends part of a chunked body, the gateway pauses reading (its buffer is
full) on the last chunk of that part, the handler drains it, then the client sends the rest.
aiohttp 3.14's pure-Python parser, which the gateway uses for every request (hijack.py), kept
that pause and held the rest back for good; `docker load` hung like that in CI.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading

import anyio
import pytest
from aiohttp import web
from berth_gateway.server import GatewayRunner

pytestmark = pytest.mark.anyio

CHUNK = 32 * 1024
FIRST_PART_CHUNKS = 5  # 160 KiB: past aiohttp's 128 KiB high-water mark on the last chunk


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


async def test_body_sent_after_a_pause_arrives() -> None:
    first_part = os.urandom(CHUNK * FIRST_PART_CHUNKS)
    rest = os.urandom(CHUNK)
    let_handler_read = anyio.Event()
    first_part_read = threading.Event()

    async def handler(request: web.Request) -> web.Response:
        await let_handler_read.wait()  # the first part piles up: reading pauses
        received = b""
        async for data in request.content.iter_any():
            received += data
            if len(received) == len(first_part):
                first_part_read.set()
        return web.Response(text=str(len(received)))

    def client(path: str) -> bytes:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            head = b"POST /load HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            parts = [first_part[i : i + CHUNK] for i in range(0, len(first_part), CHUNK)]
            sock.sendall(head + b"".join(_chunk(p) for p in parts))
            if not first_part_read.wait(10):
                return b"the handler never read the first part"
            sock.sendall(_chunk(rest) + b"0\r\n\r\n")
            return sock.recv(65536)

    app = web.Application()
    app.router.add_post("/load", handler)
    runner = GatewayRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    with tempfile.TemporaryDirectory(prefix="bgw-") as tmp:
        path = os.path.join(tmp, "api.sock")
        await web.UnixSite(runner, path).start()
        try:
            async with anyio.create_task_group() as tg:
                answer: list[bytes] = []

                async def run_client() -> None:
                    answer.append(await anyio.to_thread.run_sync(client, path))

                tg.start_soon(run_client)
                await anyio.sleep(0.2)  # the first part is in the gateway's buffer by now
                let_handler_read.set()
            response = answer[0]
            assert response.startswith(b"HTTP/1.1 200"), response[:200]
            assert response.endswith(str(len(first_part) + len(rest)).encode())
        finally:
            await runner.cleanup()
