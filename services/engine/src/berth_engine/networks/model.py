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
    ip6: str = ""  # EnableIPv6 networks
    prefix_len6: int = 0
    gateway6: str = ""
    user_ip6: str = ""  # --ip6 / IPAMConfig.IPv6Address
    link_local_ips: list[str] = msgspec.field(default_factory=list)  # --link-local-ip
    mac: str = ""  # --mac-address / EndpointSettings.MacAddress; "" = derived from the address
    driver_opts: dict[str, str] = msgspec.field(default_factory=dict)  # kept and shown

    @property
    def effective_mac(self) -> str:
        """libnetwork's GenerateMACFromIP (02:42 and the IPv4 bytes) unless one was given."""
        if self.mac:
            return self.mac
        return "02:42:" + ":".join(f"{int(b):02x}" for b in self.ip.split("."))


class Link(msgspec.Struct, frozen=True):
    """A legacy link (default bridge): the child's id and the alias the parent knows it by."""

    child_id: str
    alias: str


class PublishedPort(msgspec.Struct, kw_only=True):
    container_port: int
    protocol: str
    host_ip: str
    host_port: int
