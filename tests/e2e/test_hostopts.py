"""HostConfig options applied as dockerd applies them (or refused with dockerd's words):
ulimits, sysctls, devices and device cgroup rules, --group-add, the pid/ipc/uts/cgroup
namespaces (host, private, joined), the cgroup parent. Each was ignored before."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import socket
from collections.abc import Iterator

import pytest
from harness import Berth
from hostopts_helpers import create, run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture
def donor(berth: Berth, busybox_image: str) -> Iterator[str]:
    """A running container with shareable IPC, a file in its /dev/shm and a marker process."""
    name = "hostopts-donor"
    berth.docker("rm", "-f", name)
    berth.docker_ok(
        "run", "-d", "--name", name, "--network", "none", "--ipc", "shareable", busybox_image,
        "sh", "-c", "echo shared > /dev/shm/marker && exec sleep 300",
    )  # fmt: skip
    try:
        yield name
    finally:
        berth.docker("rm", "-f", name)


def test_ulimit(berth: Berth, busybox_image: str) -> None:
    out = run(berth, busybox_image, "--ulimit", "nofile=512:1024", "--ulimit", "nproc=300", "ulimit -n; ulimit -Hn; ulimit -u")
    assert out.split() == ["512", "1024", "300"]
    cid = berth.docker_ok("create", "--ulimit", "nofile=512:1024", busybox_image, "true").strip()
    try:
        shown = json.loads(berth.docker_ok("inspect", "-f", "{{json .HostConfig.Ulimits}}", cid))
        assert shown == [{"Name": "nofile", "Soft": 512, "Hard": 1024}]
    finally:
        berth.docker("rm", "-f", cid)
    # runc refuses an unknown limit at start, as under dockerd.
    res = berth.docker("run", "--rm", "--network", "none", "--ulimit", "bogus=1:2", busybox_image, "true")
    assert res.returncode != 0 and "bogus" in res.stderr.lower(), res


def test_sysctl(berth: Berth, busybox_image: str) -> None:
    out = run(
        berth, busybox_image, "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.msgmax=12345",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax",
    )  # fmt: skip
    assert out.split() == ["1", "12345"]
    # Not namespaced, or the host's namespace: refused at start with runc's words (as dockerd).
    status, body = create(berth, {"Sysctls": {"vm.swappiness": "1"}}, busybox_image)
    assert status == 201
    res = berth.http("POST", f"/containers/{body['Id']}/start")
    assert res.status == 500 and b'sysctl \\"vm.swappiness\\" is not in a separate kernel namespace' in res.body
    berth.docker("rm", "-f", body["Id"])
    res = berth.docker("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", busybox_image, "true")
    assert "not allowed in host network namespace" in res.stderr, res


def test_device(berth: Berth, busybox_image: str) -> None:
    out = run(berth, busybox_image, "--device", "/dev/null:/dev/mynull", "ls -l /dev/mynull && echo hi > /dev/mynull && echo wrote")
    assert out.startswith("crw-rw-rw-") and "1,   3" in out and out.strip().endswith("wrote"), out
    res = berth.docker("run", "--rm", "--network", "none", "--device", "/dev/nosuch", busybox_image, "true")
    assert 'error gathering device information while adding custom device "/dev/nosuch": no such file or directory' in res.stderr, res
    cid = berth.docker_ok("create", "--device", "/dev/null:/dev/mynull:rw", busybox_image, "true").strip()
    try:
        shown = json.loads(berth.docker_ok("inspect", "-f", "{{json .HostConfig.Devices}}", cid))
        assert shown == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"}]
    finally:
        berth.docker("rm", "-f", cid)


def test_device_cgroup_rule(berth: Berth, busybox_image: str) -> None:
    script = "mknod /dev/foo c 42 1; cat /dev/foo"
    # Without a rule the device cgroup refuses the open; with it the kernel is reached (ENXIO).
    res = berth.docker("run", "--rm", "--network", "none", busybox_image, "sh", "-c", script)
    assert "Operation not permitted" in res.stderr, res
    res = berth.docker("run", "--rm", "--network", "none", "--device-cgroup-rule", "c 42:* rmw", busybox_image, "sh", "-c", script)
    assert "No such device or address" in res.stderr, res
    cid = berth.docker_ok("create", "--device-cgroup-rule", "c 42:* rmw", busybox_image, "true").strip()
    try:
        shown = berth.docker_ok("inspect", "-f", "{{json .HostConfig.DeviceCgroupRules}}", cid)
        assert json.loads(shown) == ["c 42:* rmw"]
    finally:
        berth.docker("rm", "-f", cid)
    status, body = create(berth, {"DeviceCgroupRules": ["bogus"]}, busybox_image)
    res = berth.http("POST", f"/containers/{body['Id']}/start")
    assert res.status == 500 and json.loads(res.body) == {"message": "invalid device cgroup rule format: 'bogus'"}
    berth.docker("rm", "-f", body["Id"])


def test_group_add(berth: Berth, busybox_image: str) -> None:
    # dockerd's output: the primary group is a supplementary one too (since CVE-2022-36109).
    out = run(berth, busybox_image, "--group-add", "user", "--group-add", "4242", "--user", "nobody", "id")
    assert out.strip() == "uid=65534(nobody) gid=65534(nogroup) groups=1000(user),4242,65534(nogroup)", out
    res = berth.docker("run", "--rm", "--network", "none", "--group-add", "daemon", busybox_image, "true")
    assert "Unable to find group daemon: no matching entries in group file" in res.stderr, res
    # An exec as another user gets the container's --group-add too, as under dockerd.
    cid = berth.docker_ok("run", "-d", "--network", "none", "--group-add", "4242", busybox_image, "sleep", "60").strip()
    try:
        groups = berth.docker_ok("exec", "-u", "nobody", cid, "grep", "Groups", "/proc/self/status")
        assert groups.split() == ["Groups:", "4242", "65534"], groups
    finally:
        berth.docker("rm", "-f", cid)


def test_pid_host(berth: Berth, busybox_image: str) -> None:
    ours = run(berth, busybox_image, "--pid", "host", "cat /proc/1/cmdline | tr '\\0' ' '")
    with open("/proc/1/cmdline", "rb") as f:
        host_init = f.read().replace(b"\0", b" ").decode()
    assert ours == host_init
    assert run(berth, busybox_image, "cat /proc/1/cmdline | tr '\\0' ' '").startswith("sh ")


def test_pid_container(berth: Berth, busybox_image: str, donor: str) -> None:
    out = run(berth, busybox_image, "--pid", f"container:{donor}", "ps -o comm")
    assert "sleep" in out.split(), out
    full = berth.docker_ok("inspect", "-f", "{{.Id}}", donor).strip()
    cid = berth.docker_ok("create", "--pid", f"container:{donor}", busybox_image, "true").strip()
    try:
        assert berth.docker_ok("inspect", "-f", "{{.HostConfig.PidMode}}", cid).strip() == f"container:{full}"
        berth.docker_ok("stop", "-t", "0", donor)
        res = berth.docker("start", cid)
        assert f"container {full} is not running" in res.stderr, res
    finally:
        berth.docker("rm", "-f", cid)
    status, body = create(berth, {"PidMode": "container:nosuch"}, busybox_image)
    assert (status, body) == (400, {"message": "No such container: nosuch"})


def test_ipc_container(berth: Berth, busybox_image: str, donor: str) -> None:
    # /dev/shm is the donor's, and so is the SysV IPC namespace.
    shm_id = run(berth, busybox_image, "--ipc", f"container:{donor}", "cat /dev/shm/marker; readlink /proc/self/ns/ipc")
    donor_ns = berth.docker_ok("exec", donor, "readlink", "/proc/self/ns/ipc").strip()
    assert shm_id.split() == ["shared", donor_ns]
    # A private (the default) donor cannot be joined: dockerd's words.
    private = berth.docker_ok("run", "-d", "--network", "none", busybox_image, "sleep", "300").strip()
    try:
        res = berth.docker("run", "--rm", "--network", "none", "--ipc", f"container:{private}", busybox_image, "true")
        assert f"can't join IPC of container {private}: non-shareable IPC" in res.stderr, res
    finally:
        berth.docker("rm", "-f", private)


def test_ipc_host_and_none(berth: Berth, busybox_image: str) -> None:
    host_ns = os.readlink("/proc/self/ns/ipc")
    assert run(berth, busybox_image, "--ipc", "host", "readlink /proc/self/ns/ipc").strip() == host_ns
    assert run(berth, busybox_image, "readlink /proc/self/ns/ipc").strip() != host_ns
    assert "/dev/shm" not in run(berth, busybox_image, "--ipc", "none", "cat /proc/mounts")
    res = berth.docker("run", "--rm", "--network", "none", "--ipc", "bogus", busybox_image, "true")
    assert "Invalid IPC mode: bogus" in res.stderr, res


def test_uts_host(berth: Berth, busybox_image: str) -> None:
    assert run(berth, busybox_image, "--uts", "host", "hostname").strip() == socket.gethostname()
    res = berth.docker("create", "--uts", "host", "--hostname", "foo", busybox_image, "true")
    assert "conflicting options: hostname and the UTS mode" in res.stderr, res


def test_cgroupns(berth: Berth, busybox_image: str) -> None:
    # cgroup v1 host: dockerd's default is the host's cgroup namespace.
    cid = berth.docker_ok("create", busybox_image, "true").strip()
    try:
        assert berth.docker_ok("inspect", "-f", "{{.HostConfig.CgroupnsMode}}", cid).strip() == "host"
    finally:
        berth.docker("rm", "-f", cid)
    assert "/berth/" not in run(berth, busybox_image, "--cgroupns", "private", "cat /proc/self/cgroup")
    assert run(berth, busybox_image, "--cgroupns", "host", "cat /proc/self/cgroup").count("/berth/") >= 3
    status, body = create(berth, {"CgroupnsMode": "bogus"}, busybox_image)
    assert (status, body) == (400, {"message": "invalid cgroup namespace mode: bogus"})


def test_cgroup_parent(berth: Berth, busybox_image: str) -> None:
    parent = f"/berth-test-parent-{os.getpid()}"
    try:
        out = run(berth, busybox_image, "--cgroup-parent", parent, "cat /proc/self/cgroup; hostname")
        *cgroups, short = out.splitlines()
        assert [line for line in cgroups if f":{parent}/{short}" in line], out
        # Stats read the moved cgroup: the memory limit is the container's.
        cid = berth.docker_ok("run", "-d", "--network", "none", "--cgroup-parent", parent, "-m", "64m", busybox_image, "sleep", "60").strip()
        try:
            usage = berth.docker_ok("stats", "--no-stream", "--format", "{{.MemUsage}}", cid)
            assert usage.strip().endswith("/ 64MiB"), usage
        finally:
            berth.docker("rm", "-f", cid)
    finally:
        for controller in glob.glob(f"/sys/fs/cgroup/*{parent}"):
            with contextlib.suppress(OSError):
                os.rmdir(controller)


def test_shareable_shm_is_unmounted_with_its_container(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("run", "-d", "--network", "none", "--ipc", "shareable", busybox_image, "sleep", "60").strip()
    shm = f"{berth.exec_root}/agent/tasks/{cid}/shm"
    try:
        with open("/proc/self/mounts") as f:
            assert f" {shm} tmpfs " in f.read()
    finally:
        berth.docker("rm", "-f", cid)
    with open("/proc/self/mounts") as f:
        assert shm not in f.read()
