"""docker pause / unpause with the real CLI: the freezer stops a counter loop, unpause resumes it."""

from __future__ import annotations

import time

import pytest
from harness import Berth, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

COUNTER = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done"


def _lines(berth: Berth, cid: str) -> int:
    return len(berth.docker_ok("logs", cid).splitlines())


def test_pause_freezes_and_unpause_resumes(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("run", "-d", busybox_image, "sh", "-c", COUNTER).strip()
    try:
        wait_until(lambda: _lines(berth, cid) > 2, 30, "counter output")
        berth.docker_ok("pause", cid)
        assert berth.docker_ok("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", cid).split() == [
            "paused", "true"
        ]
        assert "(Paused)" in berth.docker_ok("ps", "--filter", f"id={cid}")
        frozen = _lines(berth, cid)
        time.sleep(1.0)  # ten ticks of the loop, had it run
        assert _lines(berth, cid) == frozen, "output while paused"
        again = berth.docker("pause", cid)
        assert f"Container {cid} is already paused" in again.stderr
        refused = berth.docker("exec", cid, "true")
        assert "is paused, unpause the container before exec" in refused.stderr
        berth.docker_ok("unpause", cid)
        wait_until(lambda: _lines(berth, cid) > frozen, 30, "output after unpause")
        assert f"Container {cid} is not paused" in berth.docker("unpause", cid).stderr
        # A paused container can still be stopped (it is thawed for its signal, as in moby).
        berth.docker_ok("pause", cid)
        berth.docker_ok("stop", "-t", "2", cid, timeout=60)
        assert berth.docker_ok("inspect", "-f", "{{.State.Status}}", cid).strip() == "exited"
    finally:
        berth.docker("rm", "-f", cid)
