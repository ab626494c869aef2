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


def nats_argv(port: int, config: Path) -> list[str]:
    # Loopback only, and every client authenticates: the config (berth_kit.busauth, from the
    # permission table) has one user per service, and JetStream for the orchestrator only. The
    # server logs to stderr (berth's log): refused connections and publishes show up there.
    return [nats_server_binary(), "-c", str(config), "-a", "127.0.0.1", "-p", str(port)]


def reachable(url: str, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections at the first server of a NATS URL."""
    first = url.split(",")[0]
    parts = urlsplit(first if "://" in first else f"nats://{first}")
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout).close()
    except OSError:
        return False
    return True
