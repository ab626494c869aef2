"""A container's attachment to a bridge that is already set up, done through netlink
instead of a netavark process (berth_agent.rtnl).

netavark's `setup` of one container re-checks every firewall rule of the network (some twenty
`iptables` processes, ~50 ms, under the host-wide lock) before it makes the veth pair. On a
network the agent keeps (netsetup's keepers), those rules exist and stay until the release, so
for an attachment whose per-container part is only the veth pair (IPv4, not internal, no DNS
entry, no published port) the agent does what netavark's bridge driver does for it, step by step
(netavark 1.4, src/network/bridge.rs `create_veth_pair`): the pair with the container end named
and addressed in the namespace (the static MAC, the network's MTU) and the host end enslaved to
the bridge, `net.ipv4.ip_forward` on, IPv6 autoconf off on the container end, both ends up, the
address with its broadcast, and the default route through the gateway (metric 100). The teardown
of such an attachment is netavark's too: delete the container end (its peer goes with it).
Anything else goes through netavark as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import socket
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from berth_agent import rtnl

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
DEFAULT_METRIC = 100  # netavark's default route metric


def eligible(options: dict[str, Any], kept: Callable[[dict[str, Any]], bool]) -> bool:
    """Whether every attachment of these netavark options is only a veth pair on a kept bridge."""
    if options.get("port_mappings"):
        return False
    for key, info in options["network_info"].items():
        per = options["networks"][key]
        if info.get("dns_enabled") or info.get("internal") or info.get("ipv6_enabled"):
            return False
        if info.get("driver") != "bridge" or len(info.get("subnets", [])) != 1:
            return False
        if (
            any(":" in ip for ip in per.get("static_ips", []))
            or len(per.get("static_ips", [])) != 1
        ):
            return False
        if set(info.get("options", {})) - {"isolate", "mtu"} or not kept(info):
            return False
    return True


def _in_netns(netns: Path, fn: Callable[[], T]) -> T:
    """Run fn in a new thread that enters the namespace and then ends: no thread of the agent is
    left in a container's namespace, whatever fails."""
    libc = ctypes.CDLL(None, use_errno=True)
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            error.append(exc)

    thread = threading.Thread(target=run, name="berth-netns", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _write_sysctl(path: str, value: str) -> None:
    with contextlib.suppress(FileNotFoundError):  # no IPv6 on this kernel: as netavark
        with open(path, "w") as f:
            f.write(value)


def attach(netns: Path, options: dict[str, Any]) -> None:
    """Make and configure each attachment's veth pair (what netavark's setup would)."""
    _write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    with rtnl.Route() as host:
        for key, info in options["network_info"].items():
            _attach_one(host, netns, options["networks"][key], info)


def _attach_one(host: rtnl.Route, netns: Path, per: dict[str, Any], info: dict[str, Any]) -> None:
    iface = str(per["interface_name"])
    mtu = int(info.get("options", {}).get("mtu", 0) or 0)
    try:
        bridge = socket.if_nametoindex(info["network_interface"])
    except OSError as exc:
        raise OSError(f"bridge {info['network_interface']} is gone") from exc
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        host.add_veth(bridge, iface, fd, str(per.get("static_mac") or ""), mtu)
    finally:
        os.close(fd)
    # netavark's order: the host end up, then the container end addressed, up, routed.
    host.set_up(_in_netns(netns, partial(_container_end, iface)))
    subnet = ipaddress.ip_network(info["subnets"][0]["subnet"], strict=False)
    if not isinstance(subnet, ipaddress.IPv4Network):
        raise OSError(f"not an IPv4 subnet: {subnet}")
    address, gateway = str(per["static_ips"][0]), str(info["subnets"][0]["gateway"])
    _in_netns(netns, partial(_configure, iface, address, subnet, gateway))


def _container_end(iface: str) -> int:
    """In the namespace: IPv6 autoconf off; the host end's index."""
    _write_sysctl(f"/proc/sys/net/ipv6/conf/{iface}/autoconf", "0")
    with rtnl.Route() as inside:
        return inside.peer_index(socket.if_nametoindex(iface))


def _configure(iface: str, address: str, subnet: ipaddress.IPv4Network, gateway: str) -> None:
    """In the namespace: the address (with its broadcast), up, the default route."""
    index = socket.if_nametoindex(iface)
    with rtnl.Route() as inside:
        inside.add_ipv4(index, address, subnet)
        inside.set_up(index)
        inside.add_default_route(index, gateway, DEFAULT_METRIC)


def detach(netns: Path, options: dict[str, Any]) -> None:
    """Delete each attachment's container end (the host end goes with it), as netavark does."""
    names = [str(per["interface_name"]) for per in options["networks"].values()]

    def remove() -> None:
        with rtnl.Route() as inside:
            for name in names:
                try:
                    index = socket.if_nametoindex(name)
                except OSError:
                    continue  # already gone
                inside.delete(index)

    _in_netns(netns, remove)
