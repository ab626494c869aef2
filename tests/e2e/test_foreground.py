"""`berth up` in a terminal: Ctrl-C stops berth but not the containers, and a new berth on the
same roots takes them over again."""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator

import pexpect
import pytest
from berth_cli import procs
from harness import BERTH, Berth, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture
def fresh_berth() -> Iterator[Berth]:
    b = Berth.create(None)
    try:
        yield b
    finally:
        b.teardown()


def test_ctrl_c_in_terminal_leaves_containers_running(fresh_berth: Berth) -> None:
    b = fresh_berth
    log = b.base / "fg.log"
    b.exec_root.mkdir(parents=True)
    # A real terminal: Ctrl-C sends SIGINT to its foreground process group. Output goes to a
    # file so nothing blocks on a full pty buffer nobody reads.
    argv = shlex.join([*BERTH, *b.up_args()])
    term = pexpect.spawn("/bin/sh", ["-c", f"exec {argv} >{shlex.quote(str(log))} 2>&1"], env=b.env, timeout=30)
    try:
        wait_until(
            lambda: log.exists() and "export DOCKER_HOST=" in log.read_text(errors="replace"),
            60,
            "berth up in foreground",
        )
        image = b.import_busybox()
        cid = b.docker_ok("run", "-d", image, "sleep", "300").strip()
        pid = int(b.docker_ok("inspect", "-f", "{{.State.Pid}}", cid))
        services = [s["pid"] for s in b.status()["services"]]

        term.sendintr()
        term.expect(pexpect.EOF, timeout=60)
        term.close()
        assert term.exitstatus == 0, log.read_text(errors="replace")[-3000:]
        assert not any(procs.alive(p) for p in services)
        time.sleep(0.5)
        assert procs.alive(pid), "the container died with berth"

        # A new berth on the same roots finds the container and controls it.
        b.up_detached()
        wait_until(lambda: cid in b.docker_ok("ps", "-q", "--no-trunc").split(), 30, "container listed")
        assert int(b.docker_ok("inspect", "-f", "{{.State.Pid}}", cid)) == pid
        b.docker_ok("stop", "-t", "1", cid, timeout=30)
        assert not procs.alive(pid)
        assert b.docker_ok("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "137"
        b.docker_ok("rm", cid)
    finally:
        if term.isalive():
            term.terminate(force=True)
