"""`--network container:<name|id>` (compose's `network_mode: service:x`) with the docker CLI and
docker-py, compared with dockerd 20.10: the joiner shares the target's network namespace,
hostname and /etc files, and dockerd's conflicts and errors are kept."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import docker
import pytest
from harness import Berth, httpd, unique_name, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

HTTPD = httpd("served-by-aa")


def test_network_container_joins_namespace(berth: Berth, busybox_image: str) -> None:
    aa, joiner = unique_name("aa"), unique_name("side")
    try:
        berth.docker_ok("run", "-d", "--name", aa, busybox_image, *HTTPD)
        [target] = json.loads(berth.docker_ok("inspect", aa))
        ip = target["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        assert ip
        out = berth.docker_ok("run", "--rm", "--network", f"container:{aa}", busybox_image,
                              "ip", "-4", "addr", "show", "eth0")  # fmt: skip
        assert f"inet {ip}/" in out
        # A server in aa answers on the joiner's loopback: one namespace.
        def fetch() -> str | None:
            res = berth.docker(
                "run", "--rm", "--network", f"container:{aa}", busybox_image,
                "sh", "-c", "timeout 5 wget -q -O - http://127.0.0.1:80/; exit $?", timeout=60,
            )  # fmt: skip
            return res.stdout if res.returncode == 0 else None

        assert wait_until(fetch, 60, "aa's httpd on 127.0.0.1") == "served-by-aa\n"
        # dockerd: the joiner takes aa's hostname and its /etc/hosts and resolv.conf.
        berth.docker_ok("run", "-d", "--name", joiner, "--network", f"container:{aa}",
                        busybox_image, "sleep", "300")  # fmt: skip
        same = "hostname; echo $HOSTNAME; cat /etc/hosts /etc/resolv.conf"
        assert berth.docker_ok("exec", joiner, "sh", "-c", same) == berth.docker_ok(
            "exec", aa, "sh", "-c", same
        )
        [info] = json.loads(berth.docker_ok("inspect", joiner))
        assert info["HostConfig"]["NetworkMode"] == f"container:{target['Id']}"
        assert info["Config"]["Hostname"] == target["Config"]["Hostname"]
        assert info["NetworkSettings"]["Networks"] == {}
        assert info["NetworkSettings"]["IPAddress"] == ""
        assert info["NetworkSettings"]["SandboxKey"] == ""
    finally:
        berth.docker("rm", "-f", joiner, aa)


def test_network_container_target_missing_or_stopped(berth: Berth, busybox_image: str) -> None:
    stopped, early = unique_name("stopped"), unique_name("early")
    try:
        # A missing target is kept as given at create and refused at start (404).
        berth.docker_ok("create", "--name", early, "--network", "container:nosuch-x",
                        busybox_image, "true")  # fmt: skip
        [info] = json.loads(berth.docker_ok("inspect", early))
        assert info["HostConfig"]["NetworkMode"] == "container:nosuch-x"
        res = berth.http("POST", f"/containers/{early}/start")
        assert (res.status, res.json()["message"]) == (404, "No such container: nosuch-x")
        # A stopped one: 409, with the id dockerd resolved at create.
        cid = berth.docker_ok("create", "--name", stopped, busybox_image, "true").strip()
        res2 = berth.docker("run", "--rm", "--network", f"container:{stopped}", busybox_image, "true")
        assert res2.returncode == 125
        assert f"cannot join network of a non running container: {cid}" in res2.stderr
    finally:
        berth.docker("rm", "-f", stopped, early)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (("-p", "8080:80"), "conflicting options: port publishing and the container type network mode"),
        (("-P",), "conflicting options: port publishing and the container type network mode"),
        (("--expose", "80"), "conflicting options: port exposing and the container type network mode"),
        (("--dns", "1.1.1.1"), "conflicting options: dns and the network mode"),
        (("--hostname", "x"), "conflicting options: hostname and the network mode"),
        (("--add-host", "a:1.2.3.4"), "conflicting options: custom host-to-IP mapping and the network mode"),
        (("--mac-address", "02:42:ac:11:00:02"), "conflicting options: mac-address and the network mode"),
        (("--link", "other:x"), "conflicting options: container type network can't be used with links. This would result in undefined behavior"),
    ],
)  # fmt: skip
def test_network_container_conflicts(
    berth: Berth, busybox_image: str, flags: tuple[str, ...], words: str
) -> None:
    res = berth.docker("create", "--network", "container:whatever", *flags, busybox_image, "true")
    assert res.returncode != 0 and words in res.stderr, res.stderr
    bad = berth.http(
        "POST", "/containers/create",
        json.dumps({"Image": busybox_image, "HostConfig": {"NetworkMode": "container:"}}).encode(),
        {"Content-Type": "application/json"},
    )  # fmt: skip
    assert bad.status == 400
    assert bad.json()["message"] == "Invalid network mode: invalid container format container:<name|id>"


def test_network_mode_container_with_docker_py(
    client: docker.DockerClient, busybox_image: str
) -> None:
    """What compose's `network_mode: service:aa` sends: HostConfig.NetworkMode container:<id>."""
    aa = client.containers.run(busybox_image, ["sleep", "300"], detach=True, name=unique_name("aa"))
    try:
        aa.reload()
        ip = aa.attrs["NetworkSettings"]["IPAddress"]
        out = client.containers.run(
            busybox_image, ["ip", "-4", "addr"], network_mode=f"container:{aa.id}", remove=True
        )
        assert f"inet {ip}/".encode() in out
    finally:
        aa.remove(force=True)


SIDECAR_COMPOSE = """\
version: "3.7"
services:
  main:
    image: {image}
    command: ["sleep", "300"]
  sidecar:
    image: {image}
    command: ["sleep", "300"]
    network_mode: "service:main"
"""


def test_compose_network_mode_service(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    """docker-compose v1's `network_mode: service:main`: the sidecar sees main's eth0."""
    project = f"nm{uuid.uuid4().hex[:8]}"
    (tmp_path / "docker-compose.yml").write_text(SIDECAR_COMPOSE.format(image=busybox_image))
    env = {**berth.client_env(), "COMPOSE_PROJECT_NAME": project}

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    try:
        up = compose("up", "-d")
        assert up.returncode == 0, up.stderr
        def eth0(service: str) -> str | None:
            res = compose("exec", "-T", service, "ip", "-4", "addr", "show", "eth0")
            return res.stdout if "inet " in res.stdout else None

        main = wait_until(lambda: eth0("main"), 60, "main's eth0")
        assert wait_until(lambda: eth0("sidecar"), 60, "the sidecar's eth0") == main
    finally:
        down = compose("down", "-t", "1")
    assert down.returncode == 0, down.stderr
