"""`GET /_ping` against a Docker API address (unix://PATH or tcp://HOST:PORT), synchronously.

A TLS listener that verifies clients cannot be pinged without a client certificate, which berth
does not have: there, the probe completes a TLS 1.3 handshake and reads the listener's refusal
of a client without a certificate (an alert, or the close asyncio's TLS server does instead),
which a TLS listener that verifies clients does at once. Nothing is sent before it, so the
refusal cannot race a reset.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from berth_cli.config import UpConfig


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _client_context() -> ssl.SSLContext:
    # Liveness of our own listener, not the server's identity: no verification.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3  # the client-certificate check comes after
    return ctx


def connection(host: str, timeout: float = 5.0, tls: str = "") -> http.client.HTTPConnection:
    if host.startswith("unix://"):
        return _UnixHTTPConnection(host[len("unix://") :], timeout)
    if host.startswith("tcp://"):
        hostname, _, port = host[len("tcp://") :].rpartition(":")
        if tls:
            return http.client.HTTPSConnection(
                hostname.strip("[]"), int(port), timeout=timeout, context=_client_context()
            )
        return http.client.HTTPConnection(hostname.strip("[]"), int(port), timeout=timeout)
    raise ValueError(f"unsupported host {host!r}")


def ping(host: str, timeout: float = 2.0, tls: str = "") -> bool:
    """True when the API answers /_ping with 200 (tls: "" plain, "tls", or "verify": see the
    module docstring)."""
    conn = connection(host, timeout, tls)
    try:
        if tls == "verify":
            return _refuses_clients_without_certificate(conn)
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _refuses_clients_without_certificate(conn: http.client.HTTPConnection) -> bool:
    conn.connect()  # a completed TLS 1.3 handshake: a TLS listener answered
    assert conn.sock is not None
    try:
        data = conn.sock.recv(1)
    except ssl.SSLError:
        return True  # the refusal as an alert (certificate required)
    except OSError:
        return False  # no refusal in time: not a listener that verifies clients
    return data == b""  # asyncio's TLS server closes without sending its alert


def use_hint(cfg: UpConfig) -> str:
    """What to export to reach the first -H with the docker CLI."""
    lines = [f"  export DOCKER_HOST={cfg.docker_host}"]
    if cfg.api_tls == "verify":
        lines.append(
            "  export DOCKER_TLS_VERIFY=1  # and DOCKER_CERT_PATH: a directory with the"
            " client's ca.pem, cert.pem, key.pem (default ~/.docker)"
        )
    elif cfg.api_tls == "tls":
        lines.append("  export DOCKER_TLS=1")
    return "\n".join(lines)
