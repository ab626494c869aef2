"""Healthchecks with the real docker CLI: probes via exec, State.Health, ps and events."""

from __future__ import annotations

import json
import time

import pytest
from harness import Berth, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _health(berth: Berth, cid: str) -> dict[str, object]:
    return json.loads(berth.docker_ok("inspect", "-f", "{{json .State.Health}}", cid))


def test_failing_healthcheck_turns_unhealthy(berth: Berth, busybox_image: str) -> None:
    since = time.time() - 1
    cid = berth.docker_ok(
        "run", "-d", "--health-cmd", "echo probing; exit 1", "--health-interval", "1s",
        "--health-retries", "2", busybox_image, "sleep", "120",
    ).strip()
    try:
        assert _health(berth, cid)["Status"] in ("starting", "unhealthy")
        wait_until(lambda: _health(berth, cid)["Status"] == "unhealthy", 60, "unhealthy")
        health = _health(berth, cid)
        assert int(health["FailingStreak"]) >= 2  # type: ignore[call-overload]
        last = health["Log"][-1]  # type: ignore[index]
        assert last["ExitCode"] == 1 and last["Output"] == "probing\n"
        assert "(unhealthy)" in berth.docker_ok("ps", "--filter", f"id={cid}")
        assert cid in berth.docker_ok("ps", "-q", "--no-trunc", "--filter", "health=unhealthy")
        assert cid not in berth.docker_ok("ps", "-q", "--no-trunc", "--filter", "health=none")
        out = berth.docker_ok(
            "events", "--since", f"{since:.3f}", "--until", f"{time.time() + 1:.3f}",
            "--filter", f"container={cid}", "--filter", "event=health_status",
            "--format", "{{.Action}}",
        )
        assert out.splitlines() == ["health_status: unhealthy"]
    finally:
        berth.docker("rm", "-f", cid)


def test_passing_healthcheck_turns_healthy(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok(
        "run", "-d", "--health-cmd", "true", "--health-interval", "1s", busybox_image,
        "sleep", "120",
    ).strip()
    try:
        wait_until(lambda: _health(berth, cid)["Status"] == "healthy", 60, "healthy")
        assert "(healthy)" in berth.docker_ok("ps", "--filter", f"id={cid}")
    finally:
        berth.docker("rm", "-f", cid)
