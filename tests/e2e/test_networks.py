"""Networks with the real docker CLI: default bridge, user-defined networks with DNS names and
aliases, isolation between networks, published ports reachable on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request

import pytest
from harness import Berth, httpd, unique_name, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

HTTPD = httpd("served-by-berth")


def _wget(berth: Berth, image: str, network: str, url: str) -> tuple[int, str]:
    res = berth.docker(
        # wget must not be PID 1 (which ignores timeout's signal): sh stays PID 1.
        "run", "--rm", "--network", network, image,
        "sh", "-c", f"timeout 5 wget -q -O - {url}; rc=$?; exit $rc",
        timeout=60,
    )  # fmt: skip
    return res.returncode, res.stdout


def test_user_network_dns_alias_and_isolation(berth: Berth, busybox_image: str) -> None:
    net, other = unique_name("front"), unique_name("other")
    web = unique_name("web")
    berth.docker_ok("network", "create", net)
    berth.docker_ok("network", "create", other)
    try:
        berth.docker_ok(
            "run", "-d", "--name", web, "--network", net, "--network-alias", "www",
            busybox_image, *HTTPD,
        )  # fmt: skip

        # By name and by alias, from a container that joins later.
        def fetch(host: str) -> str | None:
            code, out = _wget(berth, busybox_image, net, f"http://{host}/")
            return out if code == 0 else None

        assert wait_until(lambda: fetch(web), 60, "httpd reachable by name") == "served-by-berth\n"
        assert fetch("www") == "served-by-berth\n"
        # Another network neither resolves nor reaches it.
        [info] = json.loads(berth.docker_ok("inspect", web))
        ip = info["NetworkSettings"]["Networks"][net]["IPAddress"]
        assert ip and info["NetworkSettings"]["Networks"][net]["Aliases"] == ["www"]
        assert _wget(berth, busybox_image, other, f"http://{web}/")[0] != 0
        assert _wget(berth, busybox_image, other, f"http://{ip}/")[0] != 0
        # In use: Docker's refusal.
        busy = berth.docker("network", "rm", net)
        assert busy.returncode != 0 and "has active endpoints" in busy.stderr
        [ninfo] = json.loads(berth.docker_ok("network", "inspect", net))
        assert ninfo["IPAM"]["Config"][0]["Subnet"]
        assert any(c["Name"] == web for c in ninfo["Containers"].values())
    finally:
        berth.docker("rm", "-f", web)
        berth.docker("network", "rm", net)
        berth.docker("network", "rm", other)
    names = berth.docker_ok("network", "ls", "--format", "{{.Name}}").split()
    assert net not in names and {"bridge", "host", "none"} <= set(names)



def test_default_bridge_isolated_from_user_networks(berth: Berth, busybox_image: str) -> None:
    """As in Docker, the default bridge reaches no user-defined network; and removing some other
    network does not lift that (netavark 1.4 drops its host-wide isolation jump on a network's
    complete teardown; the agent puts it back)."""
    net, spare = unique_name("iso"), unique_name("spare")
    web, probe = unique_name("web"), unique_name("probe")
    berth.docker_ok("network", "create", net)
    berth.docker_ok("network", "create", spare)
    try:
        berth.docker_ok("run", "-d", "--name", web, "--network", net, busybox_image, *HTTPD)
        [info] = json.loads(berth.docker_ok("inspect", web))
        url = f"http://{info['NetworkSettings']['Networks'][net]['IPAddress']}/"
        wait_until(lambda: _wget(berth, busybox_image, net, url)[0] == 0, 60, "httpd up")
        berth.docker_ok("run", "-d", "--name", probe, busybox_image, "sleep", "300")

        def probe_reaches() -> bool:
            res = berth.docker("exec", probe, "timeout", "5", "wget", "-q", "-O", "-", url)
            return res.returncode == 0

        assert not probe_reaches()
        berth.docker_ok("run", "--rm", "--network", spare, busybox_image, "true")
        berth.docker_ok("network", "rm", spare)  # its bridge and rules go now
        assert not probe_reaches()
    finally:
        berth.docker("rm", "-f", web, probe)
        berth.docker("network", "rm", net)
        berth.docker("network", "rm", spare)

def test_published_port_on_loopback(berth: Berth, busybox_image: str) -> None:
    ctr = unique_name("pub")
    try:
        berth.docker_ok("run", "-d", "--name", ctr, "-p", "127.0.0.1::80", busybox_image, *HTTPD)
        out = berth.docker_ok("port", ctr, "80/tcp").strip()
        host, _, port = out.splitlines()[0].rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0

        def fetch() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as r:
                    return r.read().decode()
            except OSError:
                return None

        assert wait_until(fetch, 60, "the published port") == "served-by-berth\n"
        # The default bridge gives an address and /etc/hosts names it.
        [info] = json.loads(berth.docker_ok("inspect", ctr))
        ip = info["NetworkSettings"]["IPAddress"]
        assert ip and info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ip
        hosts = berth.docker_ok("exec", ctr, "cat", "/etc/hosts")
        assert f"{ip}\t{info['Config']['Hostname']}" in hosts
    finally:
        berth.docker("rm", "-f", ctr)


def test_connect_and_disconnect_running_container(berth: Berth, busybox_image: str) -> None:
    net = unique_name("late")
    web = unique_name("hot")
    berth.docker_ok("network", "create", net)
    try:
        berth.docker_ok("run", "-d", "--name", web, busybox_image, *HTTPD)
        berth.docker_ok("network", "connect", "--alias", "hotweb", net, web)
        [info] = json.loads(berth.docker_ok("inspect", web))
        assert set(info["NetworkSettings"]["Networks"]) == {"bridge", net}

        def fetch() -> str | None:
            code, out = _wget(berth, busybox_image, net, "http://hotweb/")
            return out if code == 0 else None

        assert wait_until(fetch, 60, "the connected container by alias") == "served-by-berth\n"
        berth.docker_ok("network", "disconnect", net, web)
        assert _wget(berth, busybox_image, net, "http://hotweb/")[0] != 0
        [info] = json.loads(berth.docker_ok("inspect", web))
        assert set(info["NetworkSettings"]["Networks"]) == {"bridge"}
    finally:
        berth.docker("rm", "-f", web)
        berth.docker("network", "rm", net)


def test_default_bridge_ready_when_the_process_starts(berth: Berth, busybox_image: str) -> None:
    """The agent makes the namespace and attaches it while runc creates the container: the
    first instruction already sees the loopback up, its address and its default route."""
    script = (
        "ip -o link show lo | grep -q UP && ping -c 1 -W 2 127.0.0.1 >/dev/null "
        "&& ip -4 -o addr show eth0 && ip route | grep ^default"
    )
    out = berth.docker_ok("run", "--rm", busybox_image, "sh", "-c", script)
    [addr_line, route_line] = out.strip().splitlines()
    assert " inet " in addr_line and "default via " in route_line
