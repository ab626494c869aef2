"""docker exec and interactive sessions with the real docker CLI (TTY sessions under a pty)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pexpect
import pytest
from berth_kit.otlpreceiver import OtlpReceiver, SpanRecord
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _spawn(berth: Berth, *args: str) -> pexpect.spawn:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "DOCKER_HOST": berth.docker_host,
        "DOCKER_CONFIG": str(berth.docker_config),
        "TERM": "xterm",
    }
    return pexpect.spawn(
        "docker", list(args), env=env, timeout=30, dimensions=(24, 80), encoding="utf-8"
    )


def _interactive_shell_checks(term: pexpect.spawn) -> None:
    """Type a computation, read its result, resize the window, leave with `exit 5`."""
    try:
        term.sendline("echo $((6*7))")
        term.expect("42")
        term.setwinsize(33, 101)  # SIGWINCH: the CLI posts the new size to the resize endpoint
        # The resize reaches the terminal asynchronously: ask until the shell sees it.
        for _ in range(50):
            term.sendline("stty size")
            if term.expect(["33 101", pexpect.TIMEOUT], timeout=1) == 0:
                break
        else:
            pytest.fail("the window size never reached the container's terminal")
        term.sendline("exit 5")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    assert term.exitstatus == 5, term.before


@pytest.fixture
def sleeper(berth: Berth, busybox_image: str) -> Iterator[str]:
    cid = berth.docker_ok("run", "-d", busybox_image, "sleep", "300").strip()
    try:
        yield cid
    finally:
        berth.docker("rm", "-f", cid)


def test_run_it_interactive_shell(berth: Berth, busybox_image: str) -> None:
    name = "it-shell"
    try:
        _interactive_shell_checks(_spawn(berth, "run", "-it", "--name", name, busybox_image, "sh"))
        assert berth.docker_ok("inspect", "-f", "{{.State.ExitCode}}", name).strip() == "5"
    finally:
        berth.docker("rm", "-f", name)


def test_exec_it_interactive_shell(berth: Berth, sleeper: str) -> None:
    _interactive_shell_checks(_spawn(berth, "exec", "-it", sleeper, "sh"))
    # The container itself goes on.
    assert berth.docker_ok("inspect", "-f", "{{.State.Running}}", sleeper).strip() == "true"


def test_exec_output_and_exit_codes(berth: Berth, sleeper: str) -> None:
    assert berth.docker_ok("exec", sleeper, "cat", "/etc/hostname").strip() == sleeper[:12]
    assert berth.docker("exec", sleeper, "sh", "-c", "exit 3").returncode == 3
    res = berth.docker("exec", sleeper, "sh", "-c", "echo out; echo err >&2")
    assert (res.stdout, res.stderr) == ("out\n", "err\n")
    out = berth.docker_ok(
        "exec",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "65534",
        sleeper,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u",
    )
    assert out.split() == ["bar", "/tmp", "65534"]
    assert berth.docker_ok("exec", "-i", sleeper, "cat", input="piped\n") == "piped\n"
    missing = berth.docker("exec", sleeper, "no-such-binary")
    assert missing.returncode == 126, missing
    assert "executable file not found" in missing.stdout + missing.stderr


def test_exec_detached_and_inspect(berth: Berth, sleeper: str) -> None:
    berth.docker_ok("exec", "-d", sleeper, "sh", "-c", "echo hi > /tmp/flag")
    assert berth.docker_ok("exec", sleeper, "cat", "/tmp/flag") == "hi\n"


def test_inspect_lists_running_execs(berth: Berth, sleeper: str) -> None:
    """moby's ExecIDs: the container's running execs, null when there are none."""
    fmt = "{{json .ExecIDs}}"
    assert berth.docker_ok("inspect", "-f", fmt, sleeper).strip() == "null"
    berth.docker_ok("exec", "-d", sleeper, "sleep", "3")
    deadline = time.monotonic() + 10
    ids = None
    while time.monotonic() < deadline and not ids:
        ids = json.loads(berth.docker_ok("inspect", "-f", fmt, sleeper))
    assert isinstance(ids, list) and len(ids) == 1 and len(ids[0]) == 64, ids
    exec_state = berth.http("GET", f"/exec/{ids[0]}/json").json()
    assert exec_state["ID"] == ids[0] and exec_state["Running"] is True
    while time.monotonic() < deadline + 10 and ids:
        ids = json.loads(berth.docker_ok("inspect", "-f", fmt, sleeper))
        time.sleep(0.2)
    assert ids is None


def test_exec_refused_when_not_running(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("create", busybox_image, "true").strip()
    try:
        res = berth.docker("exec", cid, "true")
        assert res.returncode != 0
        assert f"Container {cid} is not running" in res.stderr
        res = berth.docker("exec", "no-such-container", "true")
        assert "No such container: no-such-container" in res.stderr
    finally:
        berth.docker("rm", "-f", cid)


def test_detach_keys_leave_the_container_running(berth: Berth, busybox_image: str) -> None:
    name = "it-detach"
    try:
        term = _spawn(berth, "run", "-it", "--name", name, busybox_image, "sh")
        try:
            term.sendline("echo $((5*5))")
            term.expect("25")
            term.send("\x10\x11")  # ctrl-p ctrl-q
            term.expect(pexpect.EOF)
        finally:
            term.close(force=True)
        assert term.exitstatus == 0, term.before
        assert berth.docker_ok("inspect", "-f", "{{.State.Running}}", name).strip() == "true"
        # attach again: the same shell, still interactive; Ctrl-C reaches it, exit ends it.
        term = _spawn(berth, "attach", name)
        try:
            term.sendline("sleep 100")
            term.expect("sleep 100\r\n")
            time.sleep(1)  # let the shell start sleep: ^C must reach sleep, not the prompt
            term.sendintr()
            term.sendline("echo back-$((1+1))")
            term.expect("back-2")
            term.sendline("exit 3")
            term.expect(pexpect.EOF)
        finally:
            term.close(force=True)
        assert term.exitstatus == 3, term.before
    finally:
        berth.docker("rm", "-f", name)


def test_exec_joins_the_container_trace(
    berth: Berth, busybox_image: str, receiver: OtlpReceiver
) -> None:
    before = {s.span_id for s in receiver.spans}
    cid = berth.docker_ok("run", "-d", busybox_image, "sleep", "60").strip()
    try:

        def create_trace(spans: list[SpanRecord]) -> str:
            for s in spans:
                if s.span_id not in before and (s.service, s.name) == (
                    "berth-engine",
                    "ContainerCreate",
                ):
                    return s.trace_id
            return ""

        trace_id = str(receiver.wait_for(create_trace, timeout=10))
        assert trace_id
        berth.docker_ok("exec", cid, "true")

        def exec_spans(_: list[SpanRecord]) -> bool:
            names = {(s.service, s.name) for s in receiver.trace(trace_id)}
            return {("berth-engine", "container exec"), ("berth-shim", "runc exec")} <= names

        assert receiver.wait_for(exec_spans, timeout=10), "exec spans not in the container's trace"
    finally:
        berth.docker("rm", "-f", cid)
