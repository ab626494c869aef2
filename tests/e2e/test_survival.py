"""Containers outlive the services: kill -9 the runtime-agent or the engine, the supervisor
restarts it, and the containers are still there and still controllable."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from harness import Berth, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def _kill9(berth: Berth, service: str) -> int:
    s = berth.service(service)
    assert s["healthy"], f"{service} not healthy before the test: {s}"
    os.kill(s["pid"], signal.SIGKILL)
    return int(s["pid"])


def _ps_ids(berth: Berth) -> list[str]:
    return berth.docker_ok("ps", "-q", "--no-trunc").split()


@pytest.mark.parametrize(
    "service", ["berth-runtime-agent", "berth-engine", "berth-lifecycle", "berth-api-gateway"]
)
def test_container_survives_service_kill(berth: Berth, busybox_image: str, service: str) -> None:
    cid = berth.docker_ok("run", "-d", busybox_image, "sleep", "300").strip()
    try:
        pid_before = berth.docker_ok("inspect", "-f", "{{.State.Pid}}", cid).strip()
        old = _kill9(berth, service)
        berth.wait_restarted(service, old, timeout=40)
        # The API may need a moment to see the restarted service again.
        wait_until(lambda: cid in _ps_ids(berth), 20, f"{cid[:12]} in docker ps after {service} restart")
        assert berth.docker_ok("inspect", "-f", "{{.State.Pid}}", cid).strip() == pid_before
        assert berth.docker_ok("inspect", "-f", "{{.State.Running}}", cid).strip() == "true"
        berth.docker_ok("stop", "-t", "1", cid, timeout=30)
        assert cid not in _ps_ids(berth)
        assert berth.docker_ok("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "137"
    finally:
        berth.docker("rm", "-f", cid)


def test_exit_while_agent_down_is_reported(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("run", "-d", busybox_image, "sh", "-c", "sleep 3; echo done; exit 7").strip()
    try:
        old = _kill9(berth, "berth-runtime-agent")
        berth.wait_restarted("berth-runtime-agent", old, timeout=40)
        assert berth.docker_ok("wait", cid, timeout=60).strip() == "7"
        assert "done" in berth.docker_ok("logs", cid)
        assert berth.docker_ok("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "7"
    finally:
        berth.docker("rm", "-f", cid)


def test_container_survives_nats_restart(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("run", "-d", busybox_image, "sleep", "300").strip()
    try:
        nats = berth.status()["nats"]
        assert nats["reachable"] and nats["pid"]
        os.kill(nats["pid"], signal.SIGKILL)

        def back() -> bool:
            st = berth.status()
            return bool(st["nats"]["pid"] != nats["pid"] and st["healthy"])

        wait_until(back, 40, "nats-server restarted and every service healthy again")
        wait_until(lambda: cid in _ps_ids(berth), 20, f"{cid[:12]} in docker ps after NATS restart")
        berth.docker_ok("stop", "-t", "1", cid, timeout=30)
        assert berth.docker_ok("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "137"
    finally:
        berth.docker("rm", "-f", cid)


def test_exec_exit_while_agent_down_is_reported(berth: Berth, busybox_image: str) -> None:
    """An attached `docker exec` whose process exits while the runtime-agent is down ends with
    its own exit status once the restarted agent has adopted the shim; so does inspect."""
    cid = berth.docker_ok("run", "-d", busybox_image, "sleep", "300").strip()
    script = "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo out; exit 7"
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "DOCKER_HOST": berth.docker_host,
        "DOCKER_CONFIG": str(berth.docker_config),
    }
    attached = subprocess.Popen(
        ["docker", "exec", cid, "sh", "-c", script],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: _exec_ids(berth, cid), 20, "the exec listed in ExecIDs")
        (exec_id,) = _exec_ids(berth, cid)
        old = _kill9(berth, "berth-runtime-agent")
        _touch_in_rootfs(berth, cid, "/tmp/go")  # the exec exits now, with no agent running
        berth.wait_restarted("berth-runtime-agent", old, timeout=40)
        _, err = attached.communicate(timeout=60)
        assert attached.returncode == 7, err
        state = berth.http("GET", f"/exec/{exec_id}/json").json()
        assert (state["Running"], state["ExitCode"]) == (False, 7)
        assert _exec_ids(berth, cid) == []
    finally:
        attached.kill()
        attached.wait()
        berth.docker("rm", "-f", cid)


def _exec_ids(berth: Berth, cid: str) -> list[str]:
    return json.loads(berth.docker_ok("inspect", "-f", "{{json .ExecIDs}}", cid)) or []


def _touch_in_rootfs(berth: Berth, cid: str, path: str) -> None:
    """Create a file inside the container without the agent (it is down): through the init's
    root, /proc/<pid>/root."""
    pid = berth.docker_ok("inspect", "-f", "{{.State.Pid}}", cid).strip()
    with open(f"/proc/{pid}/root{path}", "w"):
        pass
