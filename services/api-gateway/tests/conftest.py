"""Fixtures: a real nats-server and the real gateway process listening on a unix socket."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from berth_kit.testing import ServiceProcess, nats_server


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


@dataclass
class Gateway:
    socket_path: str
    nats_url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def connection(self, timeout: float = 10.0) -> UnixHTTPConnection:
        return UnixHTTPConnection(self.socket_path, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn = UnixHTTPConnection(self.socket_path)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response, data
        finally:
            conn.close()


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    with nats_server() as url:
        yield url


def _wait_for_socket(path: str, gateway: ServiceProcess) -> None:
    """After its Ping: the listener answers /_ping."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if gateway.proc is None or gateway.proc.poll() is not None:
            raise RuntimeError(f"gateway exited early:\n{gateway.log_tail()}")
        try:
            conn = UnixHTTPConnection(path, timeout=2)
            conn.request("GET", "/_ping")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"gateway did not come up:\n{gateway.log_tail()}")


@contextlib.contextmanager
def run_gateway(nats_url: str, extra_env: dict[str, str] | None = None) -> Iterator[Gateway]:
    """The real `python -m berth_gateway` on a temporary unix socket."""
    with tempfile.TemporaryDirectory(prefix="berth-gw-") as tmp:
        sock = os.path.join(tmp, "d.sock")
        env = {"BERTH_HOSTS": f"unix://{sock}", "BERTH_NODE": "gwtest"}
        extra = dict(extra_env or {})
        if "BERTH_HOSTS" in extra:  # extra listeners besides the test's unix socket
            extra["BERTH_HOSTS"] = f"unix://{sock},{extra['BERTH_HOSTS']}"
        env.update(extra)
        gateway = ServiceProcess(
            "berth_gateway", "berth-api-gateway", nats_url, env, Path(tmp) / "gateway.log"
        )
        # No tracing unless a test asks (extra_env): the test's own exporter settings stay out.
        gateway.env = {k: v for k, v in gateway.env.items() if not k.startswith("OTEL_") or k in extra}
        try:
            gateway.start()
            _wait_for_socket(sock, gateway)
            assert gateway.proc is not None
            yield Gateway(
                socket_path=sock, nats_url=nats_url, proc=gateway.proc, log_path=gateway.log_path
            )
        finally:
            gateway.stop()


@pytest.fixture(scope="session")
def gateway(nats_url: str) -> Iterator[Gateway]:
    with run_gateway(nats_url) as gw:
        yield gw


@pytest.fixture
def gateway_factory(nats_url: str) -> Any:
    """run_gateway bound to the session's NATS: `with gateway_factory(env) as gw: ...`."""

    def factory(
        extra_env: dict[str, str] | None = None, nats: str | None = None
    ) -> contextlib.AbstractContextManager[Gateway]:
        return run_gateway(nats or nats_url, extra_env)

    return factory
