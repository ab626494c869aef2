"""`docker run` basics through the real docker CLI."""

from __future__ import annotations

import pytest
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_echo_hello(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("run", "--rm", busybox_image, "echo", "hello")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "hello\n"


def test_exit_code(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("run", "--rm", busybox_image, "sh", "-c", "exit 3")
    assert res.returncode == 3, res.stderr


def test_command_not_found(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("run", "--rm", busybox_image, "nosuchcmd")
    assert res.returncode == 127, (res.stdout, res.stderr)
    assert "executable file not found" in res.stderr


def test_pid_one(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("run", "--rm", busybox_image, "sh", "-c", "echo $$")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"


def test_hostname_is_short_id(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("run", "-d", busybox_image, "hostname").strip()
    try:
        assert berth.docker_ok("wait", cid).strip() == "0"
        assert berth.docker_ok("logs", cid).strip() == cid[:12]
        assert berth.docker_ok("inspect", "-f", "{{.Config.Hostname}}", cid).strip() == cid[:12]
    finally:
        berth.docker("rm", "-f", cid)


def test_env(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("run", "--rm", "-e", "FOO=bar", busybox_image, "sh", "-c", "echo $FOO")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "bar\n"


def test_workdir(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("run", "--rm", "-w", "/tmp", busybox_image, "pwd")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "/tmp\n"


def test_user(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("run", "--rm", "--user", "1000", busybox_image, "id", "-u")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "1000\n"


def test_stdin_is_piped_with_i(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("run", "-i", "--rm", busybox_image, "cat", input="piped-in\nline two\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "piped-in\nline two\n"


def test_tty(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("run", "--rm", "-t", busybox_image, "tty")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith("/dev/pts/")


def test_entrypoint_override(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("run", "--rm", "--entrypoint", "echo", busybox_image, "from", "entrypoint")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "from entrypoint\n"
