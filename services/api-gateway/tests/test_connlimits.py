"""The API server's limits (issue 15, finding 6): total header bytes (Go's 1 MiB, 431), a
header-read timeout, a connection cap and a cap on stream subscriptions, with Docker-like
answers. Raw sockets: the point is what a misbehaving client gets."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from berth_testsupport.rawhttp import read_all, read_status

pytestmark = pytest.mark.timeout(120)


@contextlib.contextmanager
def raw(path: str, timeout: float = 30.0) -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        yield s
    finally:
        s.close()


def test_more_than_a_mebibyte_of_headers_is_431(gateway: Any) -> None:
    headers = "".join(f"X-Filler-{i}: {'a' * 30_000}\r\n" for i in range(40))  # 1.2 MB, lines < 256 KiB
    with raw(gateway.socket_path) as s:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(f"GET /_ping HTTP/1.1\r\nHost: docker\r\n{headers}\r\n".encode())
        answer = read_all(s, reset_ends=True)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), answer[:200]
    # Within the limit, a request with big headers is fine.
    headers = "".join(f"X-Filler-{i}: {'a' * 30_000}\r\n" for i in range(20))
    with raw(gateway.socket_path) as s:
        s.sendall(f"GET /_ping HTTP/1.1\r\nHost: docker\r\n{headers}\r\n".encode())
        assert read_status(s).startswith("HTTP/1.1 200")


def test_headers_over_the_limit_that_arrive_whole_are_431(gateway_factory: Any) -> None:
    """One read holding the whole request, blank line included (before: counted after the
    parser had seen it, so the request was served)."""
    with gateway_factory({"BERTH_API_MAX_HEADER_BYTES": "4000"}) as gw:
        with raw(gw.socket_path) as s:
            s.sendall(f"GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Filler: {'a' * 5000}\r\n\r\n".encode())
            assert read_all(s, reset_ends=True).startswith(b"HTTP/1.1 431 "), "served"
        with raw(gw.socket_path) as s:  # the limit is the headers', not the read's
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n" * 200)  # 7 KB in one send
            answers = b""
            while answers.count(b"HTTP/1.1 200 OK") < 200 and (more := s.recv(65536)):
                answers += more
            assert answers.count(b"HTTP/1.1 200 OK") == 200


def test_a_connection_that_never_completes_its_headers_is_closed(gateway_factory: Any) -> None:
    with gateway_factory({"BERTH_API_HEADER_TIMEOUT": "1"}) as gw:
        with raw(gw.socket_path) as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n")  # and nothing more
            assert read_all(s) == b""  # closed by the server (before: the recv timed out)
        with raw(gw.socket_path) as s:  # a silent connection too
            assert read_all(s) == b""
        with raw(gw.socket_path) as s:  # a prompt client is unaffected, request after request
            for _ in range(3):
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
                assert read_status(s).startswith("HTTP/1.1 200")


def test_connections_over_the_cap_are_refused_with_503(gateway_factory: Any) -> None:
    with gateway_factory({"BERTH_API_MAX_CONNECTIONS": "3"}) as gw:
        held = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(3)]
        try:
            for s in held:
                s.connect(gw.socket_path)
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
                s.settimeout(30)
                assert read_status(s).startswith("HTTP/1.1 200")
            with raw(gw.socket_path) as s:
                head, _, body = read_all(s).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503"), head
            assert "too many connections" in json.loads(body)["message"]
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 30  # the server sees the closes asynchronously
        while True:
            with raw(gw.socket_path) as s:
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
                if read_status(s).startswith("HTTP/1.1 200"):
                    break
            assert time.monotonic() < deadline, "connections were not released"
            time.sleep(0.1)


def test_stream_subscriptions_over_the_cap_are_refused_with_503(gateway_factory: Any) -> None:
    with gateway_factory({"BERTH_API_MAX_STREAMS": "1"}) as gw:
        with raw(gw.socket_path) as first:
            first.sendall(b"GET /events HTTP/1.1\r\nHost: docker\r\n\r\n")
            assert read_status(first).startswith("HTTP/1.1 200")
            response, body = gw.request("GET", "/events")
            assert response.status == 503
            assert "too many concurrent streams" in json.loads(body)["message"]
