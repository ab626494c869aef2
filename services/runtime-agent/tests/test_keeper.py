"""The default bridge's keeper (berth_agent.netsetup): the bridge and its firewall rules outlive
the last container while the agent runs, and go when it releases them. Real netavark, real links,
in throw-away namespaces on a scratch subnet."""

from __future__ import annotations

import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from berth_agent import netsetup
from berth_agent.netsetup import NetworkSetup

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netavark, ip netns)"),
    pytest.mark.skipif(not Path(netsetup.NETAVARK).exists(), reason="netavark not installed"),
]


def free_subnet() -> str:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(100):
        subnet = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24"
        if subnet.rsplit(".", 1)[0] + "." not in routes:
            return subnet
    pytest.skip("no free 10.x.y.0/24")


@pytest.fixture
def network(tmp_path: Path) -> Iterator[dict[str, Any]]:
    info = network_info(isolate=False)
    yield info
    for link in (info["network_interface"], netsetup.keeper_name(info["id"])):
        subprocess.run(["ip", "link", "del", link], capture_output=True)


def network_info(isolate: bool) -> dict[str, Any]:
    """netavark's description of a network on a free scratch subnet."""
    net_id = uuid.uuid4().hex + uuid.uuid4().hex
    subnet = free_subnet()
    return {
        "name": netsetup.netavark_name(net_id),
        "id": net_id,
        "driver": "bridge",
        "network_interface": f"bt-{net_id[:12]}",
        "subnets": [{"subnet": subnet, "gateway": subnet.replace(".0/24", ".1")}],
        "ipv6_enabled": False,
        "internal": False,
        "dns_enabled": False,
        "ipam_options": {"driver": "host-local"},
        "options": {"isolate": "true"} if isolate else {},
    }


def attach(net: NetworkSetup, info: dict[str, Any], ns: str, address: str) -> dict[str, Any]:
    subprocess.run(["ip", "netns", "add", ns], check=True)
    options = {
        "container_id": uuid.uuid4().hex * 2,
        "container_name": ns,
        "networks": {info["name"]: {"static_ips": [address], "aliases": [], "interface_name": "eth0"}},
        "network_info": {info["name"]: info},
        "port_mappings": [],
    }
    net._run("setup", Path("/run/netns") / ns, options)
    return options


def test_keeper_holds_the_bridge_until_released(tmp_path: Path, network: dict[str, Any]) -> None:
    net = NetworkSetup(tmp_path)
    bridge = Path("/sys/class/net") / network["network_interface"]
    ns = f"bt-{os.getpid()}"
    try:
        options = attach(net, network, ns, network["subnets"][0]["subnet"].replace(".0/24", ".2"))
        net._keep(network)
        net._keep(network)  # idempotent
        assert sorted(os.listdir(bridge / "brif"))[0].startswith(("bk-", "veth"))
        assert netsetup.keeper_name(network["id"]) in os.listdir(bridge / "brif")
        net._run("teardown", Path("/run/netns") / ns, options)
        # The container left; the bridge and its rules stay (no rebuild for the next one).
        assert bridge.exists()
        assert os.listdir(bridge / "brif") == [netsetup.keeper_name(network["id"])]
        assert network["subnets"][0]["subnet"] in subprocess.run(
            ["iptables-save"], capture_output=True, text=True
        ).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert net.release_keepers() == [network["name"]]
    assert not bridge.exists()
    assert not Path(f"/sys/class/net/{netsetup.keeper_name(network['id'])}").exists()
    rules_after = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    assert network["subnets"][0]["subnet"] not in rules_after  # netavark's NAT/forward rules went
    assert net.release_keepers() == []


def _reaches(ns: str, address: str) -> bool:
    ping = ["ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "1", address]
    return subprocess.run(ping, capture_output=True).returncode == 0


def test_network_release_keeps_the_others_isolated(tmp_path: Path) -> None:
    """netavark 1.4 drops the host-wide isolation jump when an isolated network is torn down
    completely; after releasing one network, the agent puts it back for those still kept."""
    a, b, gone = (network_info(isolate=True) for _ in range(3))
    net = NetworkSetup(tmp_path)
    ns_a, ns_b, ns_gone = (f"bt{os.getpid()}{x}" for x in "abg")
    ip = {n["name"]: n["subnets"][0]["subnet"].replace(".0/24", ".2") for n in (a, b, gone)}
    attached: dict[str, dict[str, Any]] = {}
    try:
        for info, ns in ((a, ns_a), (b, ns_b), (gone, ns_gone)):
            attached[ns] = attach(net, info, ns, ip[info["name"]])
            net._keep(info)
        assert _reaches(ns_a, a["subnets"][0]["gateway"])  # the network works
        assert not _reaches(ns_a, ip[b["name"]])  # and is isolated from the others
        net._run("teardown", Path("/run/netns") / ns_gone, attached.pop(ns_gone))  # it leaves
        assert net.release_network(gone["id"])
        assert not Path(f"/sys/class/net/{gone['network_interface']}").exists()
        assert not _reaches(ns_a, ip[b["name"]])  # still isolated: the jump was put back
        assert not net.release_network(gone["id"])  # released once
    finally:
        clean_up(net, attached, [ns_a, ns_b, ns_gone], [a, b, gone])


def clean_up(
    net: NetworkSetup,
    attached: dict[str, dict[str, Any]],
    namespaces: list[str],
    networks: list[dict[str, Any]],
) -> None:
    # Containers leave through netavark (deleting a namespace frees its veth only later,
    # and a bridge that still lists it would not be torn down with its rules).
    for ns, options in attached.items():
        net._run("teardown", Path("/run/netns") / ns, options)
    for ns in namespaces:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    net.release_keepers()
    for info in networks:
        for link in (info["network_interface"], netsetup.keeper_name(info["id"])):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
