"""Named containers: ps, logs, inspect, stop, rm, name conflicts."""

from __future__ import annotations

import json

import pytest
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_named_container_lifecycle(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("run", "-d", "--name", "web", busybox_image, "sleep", "300").strip()
    try:
        assert len(cid) == 64
        ps = berth.docker_ok("ps", "--format", "{{.Names}} {{.ID}}")
        assert f"web {cid[:12]}" in ps.splitlines()

        [info] = json.loads(berth.docker_ok("inspect", "web"))
        assert info["Id"] == cid
        assert info["Name"] == "/web"
        assert info["State"]["Running"] is True
        assert info["State"]["Status"] == "running"
        assert info["State"]["Pid"] > 0
        assert info["Config"]["Cmd"] == ["sleep", "300"]
        assert info["Config"]["Image"] == busybox_image
        assert isinstance(info["HostConfig"], dict)

        # Same name again: a conflict, and nothing is created.
        dup = berth.docker("run", "-d", "--name", "web", busybox_image, "true")
        assert dup.returncode != 0
        assert "is already in use" in dup.stderr

        # sleep as PID 1 ignores SIGTERM: stop kills it after the 1 s timeout.
        berth.docker_ok("stop", "-t", "1", "web", timeout=30)
        [info] = json.loads(berth.docker_ok("inspect", "web"))
        assert info["State"]["Running"] is False
        assert info["State"]["ExitCode"] == 137
        assert "web" not in berth.docker_ok("ps", "--format", "{{.Names}}").split()
        assert "web" in berth.docker_ok("ps", "-a", "--format", "{{.Names}}").split()

        berth.docker_ok("rm", "web")
        assert "web" not in berth.docker_ok("ps", "-a", "--format", "{{.Names}}").split()
    finally:
        berth.docker("rm", "-f", "web")


def test_logs(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok(
        "run", "-d", busybox_image, "sh", "-c", "echo out-line; echo err-line >&2"
    ).strip()
    try:
        assert berth.docker_ok("wait", cid).strip() == "0"
        res = berth.docker("logs", cid)
        assert res.returncode == 0, res.stderr
        assert res.stdout == "out-line\n"
        assert res.stderr == "err-line\n"
    finally:
        berth.docker("rm", "-f", cid)


def test_rm_missing(berth: Berth) -> None:
    res = berth.docker("rm", "nosuch")
    assert res.returncode != 0
    assert "No such container: nosuch" in res.stderr


def test_oom_killed(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok(
        "run", "-d", "-m", "32m", busybox_image, "dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"
    ).strip()
    try:
        assert berth.docker_ok("wait", cid, timeout=60).strip() == "137"
        [info] = json.loads(berth.docker_ok("inspect", cid))
        assert info["State"]["OOMKilled"] is True
        assert info["State"]["ExitCode"] == 137
        assert info["HostConfig"]["Memory"] == 32 * 1024 * 1024
    finally:
        berth.docker("rm", "-f", cid)


def test_oom_killed_foreground(berth: Berth, busybox_image: str) -> None:
    res = berth.docker(
        "run", "--name", "oomfg", "-m", "32m", busybox_image, "dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"
    )
    try:
        assert res.returncode == 137, res.stderr
        assert berth.docker_ok("inspect", "-f", "{{.State.OOMKilled}}", "oomfg").strip() == "true"
    finally:
        berth.docker("rm", "-f", "oomfg")


def test_restart_and_kill(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("run", "-d", busybox_image, "sleep", "300").strip()
    try:
        pid1 = int(berth.docker_ok("inspect", "-f", "{{.State.Pid}}", cid))
        berth.docker_ok("restart", "-t", "1", cid, timeout=30)
        [info] = json.loads(berth.docker_ok("inspect", cid))
        assert info["State"]["Running"] is True
        assert info["State"]["Pid"] not in (0, pid1)
        berth.docker_ok("kill", cid)
        assert berth.docker_ok("wait", cid).strip() == "137"
    finally:
        berth.docker("rm", "-f", cid)
