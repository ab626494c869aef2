"""Listening sockets the supervisor binds once and hands to a service (its BERTH_LISTEN_FD).

A port picked by one process and bound later by another can be taken in between by any local
user, and clients would then talk to whoever holds it; a socket bound here is the service's
from the start, and stays bound across the service's restarts.
"""

from __future__ import annotations

import socket

BACKLOG = 128


def bind_tcp(listen: str) -> socket.socket:
    """A listening TCP socket on `HOST:PORT` (port 0: any free one); raises OSError."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As asyncio's create_server: a restart may rebind while old connections are in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port or 0)))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def address(sock: socket.socket) -> str:
    """`HOST:PORT` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
