"""The embedded nats-server: its command line and a readiness probe."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from berth_kit.testing import free_port, nats_server_binary


def pick_port(port: int) -> int:
    return port or free_port()


def port_in_use(port: int) -> bool:
    """True if something already listens on 127.0.0.1:port.

    Checked before starting the embedded server: if another NATS holds the port, our services
    would silently join it instead of ours.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def nats_argv(port: int, store_dir: Path) -> list[str]:
    # Loopback only: NATS carries every command unauthenticated. JetStream is on for services
    # that want it; its store lives with the rest of berth's persistent state.
    return [
        nats_server_binary(),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "-js",
        "-sd",
        str(store_dir),
    ]


def reachable(url: str, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections at the first server of a NATS URL."""
    first = url.split(",")[0]
    parts = urlsplit(first if "://" in first else f"nats://{first}")
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout).close()
    except OSError:
        return False
    return True
