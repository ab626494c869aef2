"""Network details as dockerd 20.10 keeps and honours them: the full IPAM pool (IPRange,
AuxiliaryAddresses), driver options (bridge name, MTU), MAC addresses (dockerd's 02:42:<IPv4>,
or the one asked on run or connect), names with spaces, and EndpointsConfig kept at create."""

from __future__ import annotations

import json
import random
import subprocess
import uuid

import docker
import pytest
from harness import Berth, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _host_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def test_ipam_pool_and_driver_options(berth: Berth, busybox_image: str) -> None:
    net, third = unique_name("ipam"), random.randrange(1, 250)
    bridge = f"bt{uuid.uuid4().hex[:8]}"
    prefix = f"10.216.{third}"
    berth.docker_ok(
        "network", "create", "--subnet", f"{prefix}.0/24", "--ip-range", f"{prefix}.128/25",
        "--aux-address", f"a={prefix}.128", "--gateway", f"{prefix}.1",
        "-o", "com.docker.network.driver.mtu=1400", "-o", f"com.docker.network.bridge.name={bridge}",
        "-o", "foo=bar", net,
    )  # fmt: skip
    try:
        [info] = json.loads(berth.docker_ok("network", "inspect", net))
        assert info["IPAM"]["Config"] == [
            {
                "Subnet": f"{prefix}.0/24",
                "IPRange": f"{prefix}.128/25",
                "Gateway": f"{prefix}.1",
                "AuxiliaryAddresses": {"a": f"{prefix}.128"},
            }
        ]
        assert info["Options"] == {
            "com.docker.network.bridge.name": bridge,
            "com.docker.network.driver.mtu": "1400",
            "foo": "bar",
        }
        # From the range, past the auxiliary address; the MTU and dockerd's MAC on eth0.
        out = berth.docker_ok("run", "--rm", "--network", net, busybox_image,
                              "sh", "-c", f"ip addr show eth0; ip link show {bridge} || true")  # fmt: skip
        assert f"inet {prefix}.129/24" in out and "mtu 1400" in out
        assert f"link/ether 02:42:0a:d8:{third:02x}:81" in out
        assert f"{bridge}:" in _host_links()  # the bridge has the asked name (kept for reuse)
        # --ip outside the range but inside the subnet is allowed; an auxiliary one is taken.
        out = berth.docker_ok("run", "--rm", "--network", net, "--ip", f"{prefix}.5",
                              busybox_image, "ip", "-4", "addr", "show", "eth0")  # fmt: skip
        assert f"inet {prefix}.5/24" in out
        taken = berth.docker("run", "--rm", "--network", net, "--ip", f"{prefix}.128",
                             busybox_image, "true")  # fmt: skip
        assert taken.returncode != 0 and "Address already in use" in taken.stderr
    finally:
        berth.docker("network", "rm", net)
    assert f"{bridge}:" not in _host_links()


def test_refused_driver_options(berth: Berth) -> None:
    for option in ("com.docker.network.bridge.enable_icc=false",
                   "com.docker.network.bridge.enable_ip_masquerade=false"):  # fmt: skip
        res = berth.docker("network", "create", "-o", option, unique_name("opt"))
        assert res.returncode != 0 and "berth does not support" in res.stderr


def test_mac_address_on_run_and_connect(
    berth: Berth, client: docker.DockerClient, busybox_image: str
) -> None:
    ctr, net = unique_name("mac"), unique_name("macnet")
    berth.docker_ok("network", "create", net)
    try:
        berth.docker_ok("run", "-d", "--name", ctr, "--mac-address", "02:42:ac:11:00:99",
                        busybox_image, "sleep", "300")  # fmt: skip
        assert "02:42:ac:11:00:99" in berth.docker_ok("exec", ctr, "ip", "link", "show", "eth0")
        [info] = json.loads(berth.docker_ok("inspect", ctr))
        assert info["NetworkSettings"]["MacAddress"] == "02:42:ac:11:00:99"
        assert info["NetworkSettings"]["Networks"]["bridge"]["MacAddress"] == "02:42:ac:11:00:99"
        client.api.connect_container_to_network(ctr, net, mac_address="02:42:ac:11:00:aa")
        assert "02:42:ac:11:00:aa" in berth.docker_ok("exec", ctr, "ip", "link", "show", "eth1")
        [info] = json.loads(berth.docker_ok("inspect", ctr))
        assert info["NetworkSettings"]["Networks"][net]["MacAddress"] == "02:42:ac:11:00:aa"
        bad = berth.docker("create", "--mac-address", "zz", busybox_image, "true")
        assert bad.returncode != 0
    finally:
        berth.docker("rm", "-f", ctr)
        berth.docker("network", "rm", net)


def test_network_name_with_spaces(berth: Berth, busybox_image: str) -> None:
    net = f"my net {uuid.uuid4().hex[:6]}"
    berth.docker_ok("network", "create", net)
    try:
        out = berth.docker_ok("run", "--rm", "--network", net, busybox_image,
                              "ip", "-4", "addr", "show", "eth0")  # fmt: skip
        assert "inet " in out
        assert berth.docker_ok("network", "inspect", "-f", "{{.Name}}", net).strip() == net
    finally:
        berth.docker("network", "rm", net)


def test_endpoints_config_kept_at_create(client: docker.DockerClient, busybox_image: str) -> None:
    net = client.networks.create(unique_name("epc"))
    try:
        api = client.api
        config = api.create_networking_config(
            {net.name: api.create_endpoint_config(aliases=["db1"], driver_opt={"k": "v"})}
        )
        ctr = api.create_container(busybox_image, ["true"], networking_config=config,
                                   host_config=api.create_host_config(network_mode=net.name))  # fmt: skip
        try:
            settings = api.inspect_container(ctr["Id"])["NetworkSettings"]["Networks"][net.name]
            assert settings["Aliases"] == ["db1"]
            assert settings["DriverOpts"] == {"k": "v"}
        finally:
            api.remove_container(ctr["Id"], force=True)
    finally:
        net.remove()


def test_ipv6_network(berth: Berth, busybox_image: str) -> None:
    """dockerd 20.10: EnableIPv6 needs an IPv6 pool (none by default); with one, containers get
    the first free address after the gateway, or --ip6; inspect shows them."""
    net, ctr = unique_name("v6"), unique_name("v6c")
    # A group with a leading zero: dockerd shows the pool as written, addresses canonical.
    word = "0" + uuid.uuid4().hex[:3]
    subnet6 = f"fd42:{word}:1::/64"
    short = word.lstrip("0") or "0"
    none = berth.docker("network", "create", "--ipv6", unique_name("v6none"))
    assert none.returncode != 0
    assert "could not find an available, non-overlapping IPv6 address pool" in none.stderr
    berth.docker_ok("network", "create", "--ipv6", "--subnet", subnet6, net)
    try:
        [info] = json.loads(berth.docker_ok("network", "inspect", net))
        assert info["EnableIPv6"] is True
        assert {"Subnet": subnet6} in info["IPAM"]["Config"]
        berth.docker_ok("run", "-d", "--name", ctr, "--network", net, busybox_image, "sleep", "300")
        out = berth.docker_ok("exec", ctr, "ip", "-6", "addr", "show", "eth0")
        assert f"inet6 fd42:{short}:1::2/64" in out
        [c] = json.loads(berth.docker_ok("inspect", ctr))
        ep = c["NetworkSettings"]["Networks"][net]
        assert (ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"]) == (
            f"fd42:{short}:1::2", 64, f"fd42:{short}:1::1"
        )
        out = berth.docker_ok("run", "--rm", "--network", net, "--ip6", f"fd42:{short}:1::77",
                              busybox_image, "ip", "-6", "addr", "show", "eth0")  # fmt: skip
        assert f"inet6 fd42:{short}:1::77/64" in out
    finally:
        berth.docker("rm", "-f", ctr)
        berth.docker("network", "rm", net)
    after = subprocess.run(["ip6tables-save"], capture_output=True, text=True).stdout
    assert f"fd42:{short}:1::" not in after and f"fd42:{word}:1::" not in after


def test_link_local_ips(berth: Berth, busybox_image: str) -> None:
    net = unique_name("ll")
    berth.docker_ok("network", "create", net)
    try:
        out = berth.docker_ok("run", "--rm", "--network", net, "--link-local-ip", "169.254.10.10",
                              busybox_image, "ip", "-4", "addr", "show", "eth0")  # fmt: skip
        assert "inet 169.254.10.10/16" in out
        cid = berth.docker_ok("create", "--network", net, "--link-local-ip", "169.254.10.11",
                              busybox_image, "true").strip()  # fmt: skip
        [info] = json.loads(berth.docker_ok("inspect", cid))
        ipam = info["NetworkSettings"]["Networks"][net]["IPAMConfig"]
        assert ipam["LinkLocalIPs"] == ["169.254.10.11"]
        berth.docker_ok("rm", cid)
        bad = berth.docker("create", "--network", net, "--link-local-ip", "10.1.1.1",
                           busybox_image, "true")  # fmt: skip
        assert bad.returncode != 0 and "invalid link-local IP address: 10.1.1.1" in bad.stderr
    finally:
        berth.docker("network", "rm", net)


def test_ipam_driver_and_options(berth: Berth) -> None:
    net = unique_name("iopt")
    missing = berth.docker("network", "create", "--ipam-driver", "nosuch", net)
    assert missing.returncode != 0 and 'plugin "nosuch" not found' in missing.stderr
    berth.docker_ok("network", "create", "--ipam-opt", "foo=bar", net)
    try:
        [info] = json.loads(berth.docker_ok("network", "inspect", net))
        assert info["IPAM"]["Driver"] == "default" and info["IPAM"]["Options"] == {"foo": "bar"}
    finally:
        berth.docker("network", "rm", net)
