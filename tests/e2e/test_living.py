"""Daily life with containers, with the real docker CLI: logs -f, restart policies across a
berth restart."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from harness import Berth, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def test_logs_follow_streams_until_exit(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok(
        "run", "-d", busybox_image, "sh", "-c", "for i in 1 2 3 4; do echo line$i; sleep 1; done"
    ).strip()
    env = {**os.environ, "DOCKER_HOST": berth.docker_host, "DOCKER_CONFIG": str(berth.docker_config)}
    proc = subprocess.Popen(
        ["docker", "logs", "-f", cid], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        # The first line arrives while the container still runs: it streams, not at the end.
        assert proc.stdout.readline() == "line1\n"
        state = berth.docker_ok("inspect", "-f", "{{.State.Running}}", cid).strip()
        assert state == "true"
        rest = proc.stdout.read()  # ends when the container exits
        assert rest == "line2\nline3\nline4\n"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        berth.docker("rm", "-f", cid)


def test_on_failure_restarts_three_times(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok(
        "run", "-d", "--restart", "on-failure:3", busybox_image, "sh", "-c", "echo run; exit 1"
    ).strip()
    try:
        def settled() -> bool:
            out = berth.docker_ok("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", cid)
            return out.split() == ["exited", "3"]

        wait_until(settled, 60, "three restarts, then exited")
        assert berth.docker_ok("logs", cid).split() == ["run"] * 4
        assert berth.docker_ok("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "1"
    finally:
        berth.docker("rm", "-f", cid)


def test_restart_always_comes_back_after_berth_restart(own_berth: Berth) -> None:
    b = own_berth
    image = b.import_busybox()
    always = b.docker_ok("run", "-d", "--restart", "always", image, "sleep", "300").strip()
    plain = b.docker_ok("run", "-d", image, "sleep", "300").strip()
    pids = {c: int(b.docker_ok("inspect", "-f", "{{.State.Pid}}", c)) for c in (always, plain)}
    b.berth("down", "--exec-root", str(b.exec_root), timeout=60)
    # What a machine restart does to the containers: their processes are gone.
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    b.up_detached()

    def back() -> bool:
        out = b.docker_ok("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", always).split()
        return out[0] == "running" and int(out[1]) != pids[always]

    wait_until(back, 60, "the always container running again")
    wait_until(
        lambda: b.docker_ok("inspect", "-f", "{{.State.Status}}", plain).strip() == "exited",
        60,
        "the container without a policy stays exited",
    )
