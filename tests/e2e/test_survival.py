"""Containers outlive the services: kill -9 the runtime-agent or the engine, the supervisor
restarts it, and the containers are still there and still controllable."""

from __future__ import annotations

import os
import signal

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
