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
    links: list[str] = msgspec.field(default_factory=list)  # EndpointSettings.Links, as given


class Link(msgspec.Struct, frozen=True):
    """A legacy link (default bridge): the child's id and the alias the parent knows it by."""

    child_id: str
    alias: str


class PublishedPort(msgspec.Struct, kw_only=True):
    container_port: int
    protocol: str
    host_ip: str
    host_port: int
