"""The hijacked connection over a real unix socket: 101 header block, stdin, half-close."""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from collections.abc import Callable

import anyio
import pytest
from aiohttp import web
from berth_gateway.hijack import HijackedResponse, hijack
from berth_gateway.server import GatewayRunner
from berth_gateway.stdcopy import RAW_STREAM, frame, parse_frames

pytestmark = pytest.mark.anyio


async def _echo_after_eof(request: web.Request) -> web.StreamResponse:
    """Reads stdin until the client half-closes, then answers: output after read-EOF."""
    conn = await hijack(request, RAW_STREAM)
    received = b""
    if conn.stdin is not None:
        with anyio.fail_after(10):
            if request.query.get("slow"):
                await anyio.sleep(0.3)  # let input pile up: reading must pause, not drop
            while (data := await conn.stdin.read()) is not None:
                received += data
    if request.query.get("digest"):
        received = hashlib.sha256(received).hexdigest().encode()
    await conn.write(frame(1, b"got:" + received))
    await conn.write(frame(2, b"bye"))
    conn.close()
    return HijackedResponse()


async def _serve(path: str) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/attach", _echo_after_eof)
    runner = GatewayRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    await web.UnixSite(runner, path).start()
    return runner


def _read_until_eof(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n"), rest


async def _talk(client: Callable[[socket.socket], bytes], socket_timeout: float = 10) -> bytes:
    """Serve /attach on a fresh unix socket; run `client` on a connected socket (in a thread)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "h.sock")
        runner = await _serve(path)
        try:

            def connected() -> bytes:
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.settimeout(socket_timeout)
                    sock.connect(path)
                    return client(sock)

            return await anyio.to_thread.run_sync(connected)
        finally:
            await runner.cleanup()


async def test_upgrade_stdin_and_half_close() -> None:
    def client(sock: socket.socket) -> bytes:
        sock.sendall(
            b"POST /attach HTTP/1.1\r\nHost: api.moby.localhost\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: text/plain\r\n\r\n"
            b"hel"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        sock.sendall(b"lo")
        sock.shutdown(socket.SHUT_WR)  # what the CLI does when its stdin ends
        return head + _read_until_eof(sock)

    lines, body = _split_head(await _talk(client))
    assert lines[0] == "HTTP/1.1 101 UPGRADED"
    assert f"Content-Type: {RAW_STREAM}" in lines
    assert "Connection: Upgrade" in lines
    assert "Upgrade: tcp" in lines
    assert "Api-Version: 1.44" in lines
    assert parse_frames(body) == [(1, b"got:hello"), (2, b"bye")]


async def test_large_input_is_paced_not_dropped() -> None:
    payload = os.urandom(5 * 1024 * 1024)

    def client(sock: socket.socket) -> bytes:
        sock.sendall(
            b"POST /attach?slow=1&digest=1 HTTP/1.1\r\nHost: docker\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        return _read_until_eof(sock)

    _, body = _split_head(await _talk(client, socket_timeout=30))
    digest = hashlib.sha256(payload).hexdigest().encode()
    assert parse_frames(body) == [(1, b"got:" + digest), (2, b"bye")]


async def test_client_half_closing_before_the_answer() -> None:
    def client(sock: socket.socket) -> bytes:
        sock.sendall(
            b"POST /attach HTTP/1.1\r\nHost: docker\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly"
        )
        sock.shutdown(socket.SHUT_WR)
        return _read_until_eof(sock)

    lines, body = _split_head(await _talk(client))
    assert lines[0] == "HTTP/1.1 101 UPGRADED"
    assert parse_frames(body) == [(1, b"got:early"), (2, b"bye")]


async def test_without_upgrade_header_answers_200_and_streams() -> None:
    def client(sock: socket.socket) -> bytes:
        sock.sendall(b"POST /attach HTTP/1.1\r\nHost: docker\r\n\r\n")
        return _read_until_eof(sock)

    lines, body = _split_head(await _talk(client))
    assert lines[0] == "HTTP/1.1 200 OK"
    assert f"Content-Type: {RAW_STREAM}" in lines
    assert parse_frames(body) == [(1, b"got:"), (2, b"bye")]
