"""An HTTP/1.1 answer read off a raw socket, for tests that speak the protocol by hand."""

from __future__ import annotations

import socket


def read_all(sock: socket.socket, *, reset_ends: bool = False) -> bytes:
    """Until the server closes (the socket's timeout bounds the wait). `reset_ends`: a reset
    ends the stream too, keeping what came before it: a server that refuses a request while it
    is still being sent (a 431 to headers) closes with our bytes unread, which resets."""
    chunks = []
    try:
        while data := sock.recv(65536):
            chunks.append(data)
    except ConnectionResetError:
        if not reset_ends:
            raise
    return b"".join(chunks)


def read_head(sock: socket.socket) -> tuple[list[str], bytes]:
    """The status line and header lines, and the bytes that came after them."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            break
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n"), rest


def read_status(sock: socket.socket) -> str:
    """The status line (`HTTP/1.1 200 OK`), "" when the server closed first."""
    return read_head(sock)[0][0]
