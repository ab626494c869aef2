"""BERTH_HOSTS: where the API listens (dockerd's -H): unix://PATH and tcp://HOST:PORT."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_HOSTS = "unix:///run/berth/docker.sock"
DEFAULT_TCP_PORT = 2375


@dataclass(frozen=True)
class Listen:
    kind: str  # "unix" or "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.kind == "unix" else f"tcp://{self.host}:{self.port}"


def parse_host(spec: str) -> Listen:
    spec = spec.strip()
    if spec.startswith("unix://"):
        path = spec[len("unix://") :]
        if not path.startswith("/"):
            raise ValueError(f"invalid unix socket address {spec!r}: the path must be absolute")
        return Listen(kind="unix", path=path)
    if spec.startswith("tcp://"):
        parts = urlsplit(spec)
        host = parts.hostname or "127.0.0.1"
        return Listen(kind="tcp", host=host, port=parts.port or DEFAULT_TCP_PORT)
    if spec.startswith("/"):
        return Listen(kind="unix", path=spec)
    raise ValueError(f"invalid host {spec!r}: use unix:///path or tcp://host:port")


def parse_hosts(value: str) -> list[Listen]:
    hosts = [parse_host(item) for item in value.split(",") if item.strip()]
    if not hosts:
        raise ValueError("BERTH_HOSTS names no address")
    return hosts


def configured_hosts() -> list[Listen]:
    return parse_hosts(os.environ.get("BERTH_HOSTS") or DEFAULT_HOSTS)
