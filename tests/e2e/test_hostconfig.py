"""More HostConfig options dockerd applies and berth ignored before: cpusets, memory
reservation, swappiness, the OOM killer, masked paths, --init, --add-host, --dns-search and
--dns-option, the domain name; and the values dockerd refuses (isolation, a volume plugin)."""

from __future__ import annotations

import json

import pytest
from harness import Berth
from hostopts_helpers import create, run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

MEMCG = "/sys/fs/cgroup/memory"


def test_cpuset(berth: Berth, busybox_image: str) -> None:
    assert run(berth, busybox_image, "--cpuset-cpus", "0", "cat /sys/fs/cgroup/cpuset/cpuset.cpus").strip() == "0"
    status, body = create(berth, {"CpusetCpus": "99"}, busybox_image)
    assert status == 400 and body["message"].startswith("Requested CPUs are not available - requested 99, available: ")


def test_memory_options(berth: Berth, busybox_image: str) -> None:
    out = run(
        berth, busybox_image, "-m", "200m", "--memory-reservation", "100m", "--memory-swappiness", "7",
        "--oom-kill-disable",
        f"cat {MEMCG}/memory.soft_limit_in_bytes {MEMCG}/memory.swappiness; head -1 {MEMCG}/memory.oom_control",
    )  # fmt: skip
    assert out.split() == [str(100 << 20), "7", "oom_kill_disable", "1"], out
    status, body = create(berth, {"MemorySwappiness": 101}, busybox_image)
    assert (status, body) == (400, {"message": "Invalid value: 101, valid memory swappiness range is 0-100"})


def test_masked_paths_follow_systempaths_unconfined(berth: Berth, busybox_image: str) -> None:
    # The CLI sends MaskedPaths=[] and ReadonlyPaths=[]: /proc/sys becomes writable, as dockerd.
    probe = "grep -c ' /proc/sys ' /proc/mounts || true"
    assert run(berth, busybox_image, probe).strip() == "1"
    assert run(berth, busybox_image, "--security-opt", "systempaths=unconfined", probe).strip() == "0"


def test_init(berth: Berth, busybox_image: str) -> None:
    out = run(berth, busybox_image, "--init", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert out.startswith("/sbin/docker-init -- sh -c "), out


def test_add_host_dns_search_options_and_domainname(berth: Berth, busybox_image: str) -> None:
    out = run(
        berth, busybox_image, "--add-host", "foo:1.2.3.4", "--dns-search", "example.com",
        "--dns-option", "ndots:3", "--dns", "10.9.8.7", "--domainname", "example.org",
        "tail -2 /etc/hosts; cat /etc/resolv.conf /proc/sys/kernel/domainname",
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "1.2.3.4\tfoo", out
    assert lines[1].split("\t")[1].endswith(".example.org"), out
    assert lines[2:] == ["search example.com", "nameserver 10.9.8.7", "options ndots:3", "example.org"]
    status, body = create(berth, {"ExtraHosts": ["foo"]}, busybox_image)
    assert (status, body) == (400, {"message": 'bad format for add-host: "foo"'})


def test_refused_values(berth: Berth, busybox_image: str) -> None:
    status, body = create(berth, {"Isolation": "hyperv"}, busybox_image)
    assert (status, body) == (500, {"message": "Invalid isolation: \"hyperv\" - linux only supports 'default'"})
    status, body = create(berth, {"VolumeDriver": "foo", "Binds": ["hc-v1:/v"]}, busybox_image)
    assert (status, body) == (404, {"message": 'create hc-v1: error looking up volume plugin foo: plugin "foo" not found'})
    assert "hc-v1" not in berth.docker_ok("volume", "ls", "-q").split()


def test_network_disabled_gives_loopback_only(berth: Berth, busybox_image: str) -> None:
    net = "hc-netdisabled"
    berth.docker("network", "rm", net)
    berth.docker_ok("network", "create", "--subnet", "10.231.7.0/24", net)
    try:
        body = {"Image": busybox_image, "Cmd": ["ip", "-o", "link"], "NetworkDisabled": True, "HostConfig": {"NetworkMode": net}}
        res = berth.http("POST", "/containers/create", json.dumps(body).encode(), {"Content-Type": "application/json"})
        cid = json.loads(res.body)["Id"]
        try:
            berth.docker_ok("start", "-a", cid)
            links = [line.split(":")[1].strip() for line in berth.docker_ok("logs", cid).splitlines()]
            assert links == ["lo"], links
        finally:
            berth.docker("rm", "-f", cid)
    finally:
        berth.docker("network", "rm", net)


def test_annotations_reach_the_oci_spec(berth: Berth, busybox_image: str) -> None:
    # API 1.43+ (berth speaks 1.44): HostConfig.Annotations are the OCI spec's, as moby 24+.
    status, body = create(berth, {"Annotations": {"com.example/a": "b"}}, busybox_image)
    cid = body["Id"]
    try:
        berth.docker_ok("start", cid)
        config = json.loads((berth.exec_root / "agent" / "tasks" / cid / "config.json").read_text())
        assert config["annotations"] == {"com.example/a": "b"}
    finally:
        berth.docker("rm", "-f", cid)
