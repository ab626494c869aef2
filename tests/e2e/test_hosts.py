"""-H: the API on a unix socket only by default, and on TCP as well when asked."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from berth_kit.testing import free_port
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def tcp_listen_ports(pid: int) -> set[int]:
    """Ports of the TCP sockets this process has in LISTEN state."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_no_tcp_listener_without_tcp_host(berth: Berth) -> None:
    gateway = berth.service("berth-api-gateway")
    assert gateway["healthy"]
    assert tcp_listen_ports(gateway["pid"]) == set()


@pytest.fixture
def tcp_berth() -> Iterator[Berth]:
    b = Berth.create(None, extra_hosts=(f"tcp://127.0.0.1:{free_port()}",))
    try:
        b.up_detached()
        yield b
    finally:
        b.teardown()


def test_unix_and_tcp_hosts(tcp_berth: Berth) -> None:
    b = tcp_berth
    tcp = b.extra_hosts[0]
    status = b.status()
    assert status["hosts"] == [b.docker_host, tcp]
    assert status["docker_host"] == b.docker_host
    port = int(tcp.rsplit(":", 1)[1])
    assert port in tcp_listen_ports(b.service("berth-api-gateway")["pid"])
    for host in (b.docker_host, tcp):
        out = b.docker("version", "--format", "{{.Server.APIVersion}}", host=host)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip()
        assert b.docker("ps", host=host).returncode == 0


def test_plain_tcp_is_warned_about_in_info(tcp_berth: Berth) -> None:
    """dockerd's /info warning for a TCP host without TLS (loopback: served, with a warning)."""
    b = tcp_berth
    out = b.docker("info", "--format", "{{json .Warnings}}")
    assert out.returncode == 0, out.stderr
    addr = b.extra_hosts[0][len("tcp://") :]
    [warning] = json.loads(out.stdout)
    assert warning.startswith(
        f"[DEPRECATION NOTICE]: API is accessible on http://{addr} without encryption."
    )
