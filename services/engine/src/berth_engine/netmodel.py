"""What a container record keeps about its networks: endpoints (address, aliases) and the
host ports published for the current run."""

from __future__ import annotations

import msgspec


class Endpoint(msgspec.Struct, kw_only=True):
    network_id: str
    network_name: str
    ip: str
    prefix_len: int
    gateway: str
    aliases: list[str] = msgspec.field(default_factory=list)  # as the client gave them
    user_ip: str = ""  # --ip / IPAMConfig.IPv4Address


class PublishedPort(msgspec.Struct, kw_only=True):
    container_port: int
    protocol: str
    host_ip: str
    host_port: int
