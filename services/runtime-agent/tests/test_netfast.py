"""netfast: a container attached to a kept bridge through netlink ends up exactly as netavark
attaches it (same interface, addresses, routes, sysctls, host end; no firewall change), and
leaves as netavark's teardown leaves it. Real netavark and links, throw-away namespaces."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from berth_agent import netfast, netsetup
from berth_agent.netsetup import NetworkSetup
from test_keeper import attach, clean_up, network_info

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netavark, ip netns)"),
    pytest.mark.skipif(not Path(netsetup.NETAVARK).exists(), reason="netavark not installed"),
]


def _in(ns: str, *argv: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True
    ).stdout


def _sysctls(ns: str, iface: str) -> dict[str, str]:
    out = {}
    for family in ("ipv4", "ipv6"):
        listing = _in(ns, "sh", "-c", f"grep -r . /proc/sys/net/{family}/conf/{iface}/ || true")
        for line in listing.splitlines():
            key, _, value = line.partition(":")
            out[key.rsplit("/", 1)[1] + f"@{family}"] = value
    return out


def _snapshot(ns: str) -> dict[str, Any]:
    """What a container sees of its network, without what differs between any two containers
    (interface indexes, its own address, the random MAC of the host end)."""
    links = json.loads(_in(ns, "ip", "-d", "-j", "link", "show"))
    for link in links:
        for key in ("ifindex", "link_index", "address", "link_netnsid", "operstate"):
            link.pop(key, None)
        for key in ("inet6_addr_gen_mode",):
            link.get("linkinfo", {}).pop(key, None)
    addrs = json.loads(_in(ns, "ip", "-j", "-4", "addr", "show"))
    for addr in addrs:
        for key in ("ifindex", "link_index", "address", "operstate", "link_netnsid"):
            addr.pop(key, None)
        for info in addr.get("addr_info", []):
            info.pop("local", None)
    routes = json.loads(_in(ns, "ip", "-j", "route", "show"))
    for route in routes:
        route.pop("prefsrc", None)
    return {"links": links, "addrs": addrs, "routes": routes, "sysctl": _sysctls(ns, "eth0")}


def _host_end(ns: str) -> dict[str, Any]:
    peer = int(_in(ns, "cat", "/sys/class/net/eth0/iflink"))
    link = json.loads(
        subprocess.run(["ip", "-d", "-j", "link", "show"], capture_output=True, text=True).stdout
    )
    (mine,) = [x for x in link if x["ifindex"] == peer]
    return {
        "master": mine.get("master"),
        "mtu": mine["mtu"],
        "up": "UP" in mine["flags"],
        "kind": mine.get("linkinfo", {}).get("info_kind"),
        "name": mine["ifname"].rstrip("0123456789"),
    }


def _firewall() -> list[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return sorted(x.split(" [")[0] for x in out.splitlines() if x and not x.startswith("#"))


def test_netlink_attach_matches_netavark(tmp_path: Path) -> None:
    info = network_info(isolate=True)
    net = NetworkSetup(tmp_path)
    ns_first, ns_netavark, ns_fast = (f"bf{os.getpid()}{x}" for x in "anf")
    prefix = info["subnets"][0]["subnet"].rsplit(".", 1)[0]
    attached: dict[str, dict[str, Any]] = {}
    try:
        # The first container sets the network up (bridge, rules); the keeper holds them.
        attached[ns_first] = attach(net, info, ns_first, f"{prefix}.2")
        net._keep_all(attached[ns_first])
        attached[ns_netavark] = attach(net, info, ns_netavark, f"{prefix}.3")
        rules = _firewall()
        subprocess.run(["ip", "netns", "add", ns_fast], check=True)
        subprocess.run(
            ["ip", "netns", "exec", ns_fast, "ip", "link", "set", "lo", "up"], check=True
        )
        options = {
            "container_id": uuid.uuid4().hex * 2,
            "container_name": ns_fast,
            "networks": {
                info["name"]: {
                    "static_ips": [f"{prefix}.4"],
                    "aliases": [],
                    "interface_name": "eth0",
                }
            },
            "network_info": {info["name"]: info},
            "port_mappings": [],
        }
        assert netfast.eligible(options, net._kept)
        netfast.attach(Path("/run/netns") / ns_fast, options)
        attached[ns_fast] = options

        assert _snapshot(ns_fast) == _snapshot(ns_netavark)
        assert _host_end(ns_fast) == _host_end(ns_netavark)
        assert _firewall() == rules  # netavark's per-container setup changed no rule either
        ping = ["busybox", "ping", "-c", "1", "-W", "2"]
        _in(ns_fast, *ping, f"{prefix}.3")  # the two reach each other and the gateway
        _in(ns_netavark, *ping, f"{prefix}.4")
        _in(ns_fast, *ping, info["subnets"][0]["gateway"])

        host_links = set(os.listdir(f"/sys/class/net/{info['network_interface']}/brif"))
        netfast.detach(Path("/run/netns") / ns_fast, attached.pop(ns_fast))
        left = set(os.listdir(f"/sys/class/net/{info['network_interface']}/brif"))
        assert len(host_links - left) == 1  # its host end went with it, synchronously
        assert "eth0" not in _in(ns_fast, "ip", "link", "show")
        assert _firewall() == rules
    finally:
        clean_up(net, attached, [ns_first, ns_netavark, ns_fast], [info])


def test_what_netavark_still_does() -> None:
    """Published ports, DNS, IPv6, internal networks and unkept bridges stay netavark's."""
    info = network_info(isolate=True)
    per = {"static_ips": ["10.1.2.3"], "aliases": [], "interface_name": "eth0"}
    base = {
        "networks": {info["name"]: per},
        "network_info": {info["name"]: info},
        "port_mappings": [],
    }
    assert netfast.eligible(base, lambda _: True)
    assert not netfast.eligible(base, lambda _: False)
    port = {"host_ip": "", "container_port": 80, "host_port": 8080, "range": 1, "protocol": "tcp"}
    assert not netfast.eligible({**base, "port_mappings": [port]}, lambda _: True)
    for key in ("dns_enabled", "internal", "ipv6_enabled"):
        changed = {**base, "network_info": {info["name"]: {**info, key: True}}}
        assert not netfast.eligible(changed, lambda _: True)
