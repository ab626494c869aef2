"""Legacy links with the docker CLI and docker-py, as dockerd 20.10 does them: `--link` on the
default bridge (an /etc/hosts line and the `<ALIAS>_*` variables), links as endpoint settings on
user-defined networks (`run --link`, `network connect --link`), and `docker rm --link`."""

from __future__ import annotations

import json

import pytest
from harness import Berth, httpd, unique_name, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

HTTPD = httpd("served-by-child")


def test_link_on_default_bridge(berth: Berth, busybox_image: str) -> None:
    db, web = unique_name("db"), unique_name("web")
    try:
        berth.docker_ok("run", "-d", "--name", db, "-e", "DB_USER=alice", "--expose", "5432",
                        "--expose", "80", busybox_image, *HTTPD)  # fmt: skip
        [child] = json.loads(berth.docker_ok("inspect", db))
        ip = child["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        berth.docker_ok("run", "-d", "--name", web, "--link", f"{db}:pg-db", busybox_image,
                        "sleep", "300")  # fmt: skip
        env = dict(
            line.split("=", 1) for line in berth.docker_ok("exec", web, "env").splitlines()
        )
        # moby's Link.ToEnv: the lowest port is the default one; "-" in the alias becomes "_".
        assert env["PG_DB_PORT"] == f"tcp://{ip}:80"
        assert env["PG_DB_PORT_5432_TCP"] == f"tcp://{ip}:5432"
        assert env["PG_DB_PORT_5432_TCP_ADDR"] == ip
        assert env["PG_DB_PORT_5432_TCP_PORT"] == "5432"
        assert env["PG_DB_PORT_5432_TCP_PROTO"] == "tcp"
        assert env["PG_DB_PORT_80_TCP"] == f"tcp://{ip}:80"
        assert env["PG_DB_NAME"] == f"/{web}/pg-db"
        assert env["PG_DB_ENV_DB_USER"] == "alice"
        assert "PG_DB_ENV_PATH" not in env
        hosts = berth.docker_ok("exec", web, "cat", "/etc/hosts")
        assert f"{ip}\tpg-db {child['Config']['Hostname']} {db}\n" in hosts
        [parent] = json.loads(berth.docker_ok("inspect", web))
        assert parent["HostConfig"]["Links"] == [f"/{db}:/{web}/pg-db"]
        # The alias reaches the child.
        def fetch() -> str | None:
            res = berth.docker("exec", web, "timeout", "5", "wget", "-q", "-O", "-", "http://pg-db/")
            return res.stdout if res.returncode == 0 else None

        assert wait_until(fetch, 60, "the linked child by alias") == "served-by-child\n"
        # `docker rm --link /web/alias` removes the link only.
        rm = berth.docker("rm", "--link", db)
        assert rm.returncode != 0
        assert "Conflict, cannot remove the default link name of the container" in rm.stderr
        berth.docker_ok("rm", "--link", f"/{web}/pg-db")
        [parent] = json.loads(berth.docker_ok("inspect", web))
        assert parent["HostConfig"]["Links"] is None
        assert berth.docker_ok("inspect", "-f", "{{.State.Running}}", db).strip() == "true"
    finally:
        berth.docker("rm", "-f", web, db)


def test_link_errors(berth: Berth, busybox_image: str) -> None:
    db, web = unique_name("db"), unique_name("web")
    try:
        missing = berth.docker("create", "--link", "nosuch-x:a", busybox_image, "true")
        assert missing.returncode != 0
        assert "could not get container for nosuch-x: No such container: nosuch-x" in missing.stderr
        berth.docker_ok("create", "--name", db, busybox_image, "true")
        berth.docker_ok("create", "--name", web, "--link", f"{db}:pg", busybox_image, "true")
        res = berth.http("POST", f"/containers/{web}/start")
        assert res.status == 500
        assert res.json()["message"] == f"Cannot link to a non running container: /{db} AS /{web}/pg"
    finally:
        berth.docker("rm", "-f", web, db)


def test_links_on_user_network(berth: Berth, busybox_image: str) -> None:
    net, child, web, late = unique_name("lnet"), unique_name("child"), unique_name("web"), unique_name("late")
    berth.docker_ok("network", "create", net)
    try:
        berth.docker_ok("run", "-d", "--name", child, "--network", net, busybox_image, *HTTPD)
        berth.docker_ok("run", "-d", "--name", web, "--network", net, "--link", f"{child}:dbx",
                        busybox_image, "sleep", "300")  # fmt: skip
        [info] = json.loads(berth.docker_ok("inspect", web))
        assert info["NetworkSettings"]["Networks"][net]["Links"] == [f"{child}:dbx"]

        def fetch() -> str | None:
            res = berth.docker("exec", web, "timeout", "5", "wget", "-q", "-O", "-", "http://dbx/")
            return res.stdout if res.returncode == 0 else None

        assert wait_until(fetch, 60, "the link's alias on a user network") == "served-by-child\n"
        # Connected while running: the alias works at once (dockerd: its DNS; here /etc/hosts).
        berth.docker_ok("run", "-d", "--name", late, busybox_image, "sleep", "300")
        berth.docker_ok("network", "connect", "--link", f"{child}:zz", net, late)
        [info] = json.loads(berth.docker_ok("inspect", late))
        assert info["NetworkSettings"]["Networks"][net]["Links"] == [f"{child}:zz"]
        res = berth.docker("exec", late, "timeout", "5", "wget", "-q", "-O", "-", "http://zz/")
        assert res.stdout == "served-by-child\n", res.stderr
    finally:
        berth.docker("rm", "-f", late, web, child)
        berth.docker("network", "rm", net)


def test_add_host_records(berth: Berth, busybox_image: str) -> None:
    """`--add-host` (ignored until now): records after the defaults, before the container's own
    line, as libnetwork writes them; `host-gateway` is the default bridge's gateway."""
    hosts = berth.docker_ok("run", "--rm", "--add-host", "a.b:1.2.3.4", "--add-host", "c:5.6.7.8",
                            "--add-host", "gw:host-gateway", busybox_image, "cat", "/etc/hosts")  # fmt: skip
    assert "ff02::2\tip6-allrouters\n1.2.3.4\ta.b\n5.6.7.8\tc\n" in hosts
    [bridge] = json.loads(berth.docker_ok("network", "inspect", "bridge"))
    assert f"{bridge['IPAM']['Config'][0]['Gateway']}\tgw\n" in hosts
