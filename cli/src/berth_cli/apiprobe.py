"""`GET /_ping` against a Docker API address (unix://PATH or tcp://HOST:PORT), synchronously."""

from __future__ import annotations

import http.client
import socket


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


def connection(host: str, timeout: float = 5.0) -> http.client.HTTPConnection:
    if host.startswith("unix://"):
        return _UnixHTTPConnection(host[len("unix://") :], timeout)
    if host.startswith("tcp://"):
        hostname, _, port = host[len("tcp://") :].rpartition(":")
        return http.client.HTTPConnection(hostname.strip("[]"), int(port), timeout=timeout)
    raise ValueError(f"unsupported host {host!r}")


def ping(host: str, timeout: float = 2.0) -> bool:
    """True when the API answers /_ping with 200."""
    conn = connection(host, timeout)
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
