"""Networks: the engine's network commands (subjects.ENGINE_RPC), Docker's Network object, and
what a task needs to be attached (the runtime agent drives netavark + aardvark-dns with it)."""

from __future__ import annotations

from typing import Any

import msgspec

from berth_contracts.base import Command, Reply
from berth_contracts.identifiers import Identifier

Filters = dict[str, list[str]]


# --- what the agent gets (TaskSpec.networks / TaskSpec.port_mappings) -----------------------------


class NetworkAttachment(msgspec.Struct, frozen=True):
    """One bridge network a task joins, with the address the engine allocated."""

    # Docker's name: any non-empty string (dockerd takes spaces), so not a `Name`; the agent
    # never builds a path or a netavark name from it, only from the id.
    name: str
    id: Identifier  # 64 hex
    bridge: str  # host interface name
    subnet: str  # CIDR
    gateway: str
    ip: str
    aliases: list[str] = msgspec.field(default_factory=list)
    dns_enabled: bool = False  # user-defined networks resolve names through aardvark-dns
    internal: bool = False
    mac: str = ""  # the interface's MAC address (dockerd's 02:42:<IPv4> unless one was given)
    mtu: int = 0  # com.docker.network.driver.mtu; 0 = the kernel's default
    subnet6: str = ""  # EnableIPv6 networks: the IPv6 subnet, its gateway, the task's address
    gateway6: str = ""
    ip6: str = ""
    link_local_ips: list[str] = msgspec.field(default_factory=list)  # added to the interface


class PortMapping(msgspec.Struct, frozen=True):
    host_ip: str  # "" = every address
    host_port: int
    container_port: int
    protocol: str = "tcp"


# --- Docker's objects ------------------------------------------------------------------------------


class Network(msgspec.Struct, rename="pascal", omit_defaults=False, frozen=True):
    """Docker's Network (GET /networks/{id})."""

    name: str
    id: str = msgspec.field(default="", name="Id")
    created: str = ""
    scope: str = "local"
    driver: str = "bridge"
    enable_ipv6: bool = msgspec.field(default=False, name="EnableIPv6")
    ipam: dict[str, Any] = msgspec.field(default_factory=dict, name="IPAM")
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    config_from: dict[str, str] = msgspec.field(default_factory=lambda: {"Network": ""})
    config_only: bool = False
    containers: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)
    options: dict[str, str] = msgspec.field(default_factory=dict)
    labels: dict[str, str] = msgspec.field(default_factory=dict)


# --- commands --------------------------------------------------------------------------------------


class IpamPool(msgspec.Struct, frozen=True):
    """One IPAM.Config entry of `POST /networks/create`."""

    subnet: str = ""
    ip_range: str = ""
    gateway: str = ""
    aux_addresses: dict[str, str] = msgspec.field(default_factory=dict)


class NetworkCreate(Command, frozen=True):
    name: str
    driver: str = ""
    internal: bool = False
    attachable: bool = False
    subnet: str = ""  # the first pool's (older callers); `pools` has them all
    gateway: str = ""
    pools: list[IpamPool] = msgspec.field(default_factory=list)
    enable_ipv6: bool = False
    ipam_driver: str = ""  # IPAM.Driver: "" or "default"
    ipam_options: dict[str, str] = msgspec.field(default_factory=dict)  # IPAM.Options, kept
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    options: dict[str, str] = msgspec.field(default_factory=dict)
    check_duplicate: bool = True


class NetworkCreated(Reply, frozen=True):
    id: str
    warning: str = ""


class NetworkGet(Command, frozen=True):
    ref: str


class NetworkDetail(Reply, frozen=True):
    network: Network


class NetworkList(Command, frozen=True):
    filters: Filters = msgspec.field(default_factory=dict)


class NetworkListing(Reply, frozen=True):
    networks: list[Network]


class NetworkRemove(Command, frozen=True):
    ref: str


class NetworkConnect(Command, frozen=True):
    ref: str
    container: str
    aliases: list[str] = msgspec.field(default_factory=list)
    ipv4_address: str = ""
    ipv6_address: str = ""
    link_local_ips: list[str] = msgspec.field(default_factory=list)
    links: list[str] = msgspec.field(default_factory=list)  # EndpointConfig.Links
    mac_address: str = ""  # EndpointConfig.MacAddress
    driver_opts: dict[str, str] = msgspec.field(default_factory=dict)


class NetworkDisconnect(Command, frozen=True):
    ref: str
    container: str
    force: bool = False


class NetworkPrune(Command, frozen=True):
    filters: Filters = msgspec.field(default_factory=dict)


class NetworksPruned(Reply, frozen=True):
    networks_deleted: list[str]


class NetworkRelease(Command, frozen=True):
    """Agent (subjects.agent_rpc): `docker network rm` happened; drop what the agent keeps up
    for that network between containers (its bridge keeper, hence the bridge and its rules); Done."""

    network_id: Identifier


class TaskNetworkUpdate(Command, frozen=True):
    """Agent (subjects.agent_rpc): attach a running task to more networks or detach it
    (`docker network connect/disconnect` of a running container); Done."""

    container_id: Identifier
    connect: list[NetworkAttachment] = msgspec.field(default_factory=list)
    disconnect: list[Identifier] = msgspec.field(default_factory=list)  # network ids
    # /etc/hosts records to append (`network connect --link` on a running container)
    add_hosts: list[str] = msgspec.field(default_factory=list)
