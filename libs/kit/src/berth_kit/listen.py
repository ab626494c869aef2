"""Listening sockets a service inherits from `berth up` (BERTH_LISTEN_FD: fd numbers).

The supervisor binds the port once and hands the socket down, so no other local process can
take the port between a pick and a bind (berth_cli.listeners)."""

from __future__ import annotations

import os
import socket

LISTEN_FD_ENV = "BERTH_LISTEN_FD"


def inherited_sockets() -> list[socket.socket]:
    """The sockets named by BERTH_LISTEN_FD (removed from the environment: children of the
    service must not take them for theirs); [] when the service was started on its own."""
    raw = os.environ.pop(LISTEN_FD_ENV, "")
    out: list[socket.socket] = []
    for part in filter(None, raw.split(",")):
        sock = socket.socket(fileno=int(part))
        sock.set_inheritable(False)
        sock.setblocking(False)
        out.append(sock)
    return out
