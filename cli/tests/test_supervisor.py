"""`berth up -d` / `status --json` / `down` with a real nats-server and stand-in services."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from berth_cli import procs
from berth_kit.busauth import CREDS_ENV, SERVER_CONFIG, creds_path
from berth_kit.testing import anonymous_nats_answer, nats_server

NAMES = ["berth-engine", "berth-lifecycle", "berth-runtime-agent", "berth-api-gateway"]


def status(roots: Any, env: dict[str, str]) -> dict[str, Any]:
    res = roots.berth("status", "--json", "--exec-root", str(roots.exec_root), env=env, timeout=30)
    return json.loads(res.stdout)


def wait_for(pred, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def up_d(roots: Any, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return roots.berth(
        "up", "-d", "-H", roots.sock, "--exec-root", str(roots.exec_root), "--data-root", str(roots.data_root),
        "--nats-port", "0", "--ready-timeout", "30", *extra, env=env, timeout=60,
    )


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in report["services"]}


def kill9_and_wait_restart(roots: Any, env: dict[str, str], service: dict[str, Any]) -> dict[str, Any]:
    """kill -9 one service; its status once the supervisor has it healthy again."""
    name, old_pid = service["name"], service["pid"]
    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        s = by_name(status(roots, env))[name]
        return s if s["healthy"] and s["pid"] != old_pid else None

    return wait_for(restarted, 30, f"{name} restart")


def test_up_status_restart_down(roots: Any, fake_env: dict[str, str]) -> None:
    res = up_d(roots, fake_env)
    assert res.returncode == 0, res.stderr
    assert f"export DOCKER_HOST={roots.sock}" in res.stdout

    report = wait_for(lambda: (r := status(roots, fake_env))["healthy"] and r, 30, "healthy")
    assert report["running"] is True
    assert report["docker_host"] == roots.sock
    assert report["api"]["ping"] is True
    assert report["nats"]["reachable"] is True
    assert report["nats"]["embedded"] is True
    assert procs.alive(report["nats"]["pid"])
    assert report["log_file"] == str(roots.exec_root / "berth.log")
    services = by_name(report)
    assert sorted(services) == sorted(NAMES)
    for s in services.values():
        assert s["healthy"] and s["alive"] and s["state"] == "running"
        assert s["answered_pid"] == s["pid"]
        # Own session: a terminal's Ctrl-C never reaches services (or the shims they start).
        assert os.getsid(s["pid"]) == s["pid"]
    supervisor = report["supervisor"]["pid"]
    assert os.getsid(supervisor) == supervisor

    human = roots.berth("status", "--exec-root", str(roots.exec_root), env=fake_env, timeout=30)
    assert human.returncode == 0
    assert "healthy: yes" in human.stdout
    assert f"DOCKER_HOST={roots.sock}" in human.stdout
    for name in NAMES:
        assert name in human.stdout

    # A second berth on the same exec root is refused.
    again = up_d(roots, fake_env)
    assert again.returncode != 0
    assert "already running" in again.stderr

    # kill -9 one service: the supervisor restarts it and it answers again.
    engine = kill9_and_wait_restart(roots, fake_env, services["berth-engine"])
    assert engine["restarts"] == 1
    assert engine["last_exit"] == -signal.SIGKILL

    pids = [s["pid"] for s in by_name(status(roots, fake_env)).values()] + [report["nats"]["pid"]]
    res = roots.berth("down", "--exec-root", str(roots.exec_root), env=fake_env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert not procs.alive(supervisor)
    for pid in pids:
        assert not procs.alive(pid)
    assert not (roots.exec_root / "berth.json").exists()
    gone = status(roots, fake_env)
    assert gone["running"] is False


def test_foreground_prints_docker_host_and_stops_on_sigint(roots: Any, fake_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "berth_cli", "up", "-H", roots.sock, "--exec-root", str(roots.exec_root),
         "--data-root", str(roots.data_root), "--nats-port", "0"],
        env=fake_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        # readline blocks; the pytest timeout bounds it, and the line comes within seconds.
        line = ""
        deadline = time.monotonic() + 30
        while "DOCKER_HOST" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        assert f"export DOCKER_HOST={roots.sock}" in line
        report = status(roots, fake_env)
        pids = [s["pid"] for s in report["services"]]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0
        for pid in pids:
            assert not procs.alive(pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_down_when_not_running(roots: Any, fake_env: dict[str, str]) -> None:
    roots.exec_root.mkdir(parents=True)
    res = roots.berth("down", "--exec-root", str(roots.exec_root), env=fake_env, timeout=30)
    assert res.returncode == 0
    assert "not running" in res.stdout
    res = roots.berth("status", "--exec-root", str(roots.exec_root), env=fake_env, timeout=30)
    assert res.returncode == 1
    assert "not running" in res.stdout


def test_up_d_fails_with_log_tail_when_api_never_answers(roots: Any, fake_env: dict[str, str]) -> None:
    env = dict(fake_env, BERTH_SUPERVISE="berth-engine=fakesvc.engine,berth-api-gateway=fakesvc.nosuch")
    res = roots.berth(
        "up", "-d", "-H", roots.sock, "--exec-root", str(roots.exec_root), "--data-root", str(roots.data_root),
        "--nats-port", "0", "--ready-timeout", "3", env=env, timeout=60,
    )
    assert res.returncode == 1
    assert "did not answer" in res.stderr
    assert "No module named fakesvc.nosuch" in res.stderr  # the log tail
    assert not (roots.exec_root / "berth.json").exists()  # it stopped what it started


def test_down_after_supervisor_was_killed(roots: Any, fake_env: dict[str, str]) -> None:
    res = up_d(roots, fake_env)
    assert res.returncode == 0, res.stderr
    report = wait_for(lambda: (r := status(roots, fake_env))["healthy"] and r, 30, "healthy")
    os.kill(report["supervisor"]["pid"], signal.SIGKILL)
    wait_for(lambda: not procs.alive(report["supervisor"]["pid"]), 10, "supervisor gone")
    # Services are not the supervisor's process group: they survive it...
    pids = [s["pid"] for s in report["services"]] + [report["nats"]["pid"]]
    assert all(procs.alive(p) for p in pids)
    assert status(roots, fake_env)["running"] is False
    # ...and `down` stops what it left, one pid at a time.
    res = roots.berth("down", "--exec-root", str(roots.exec_root), env=fake_env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "leftover" in res.stdout
    assert not any(procs.alive(p) for p in pids)
    assert not (roots.exec_root / "berth.json").exists()


def test_up_reaps_leftovers_of_a_killed_supervisor(roots: Any, fake_env: dict[str, str]) -> None:
    assert up_d(roots, fake_env).returncode == 0
    report = wait_for(lambda: (r := status(roots, fake_env))["healthy"] and r, 30, "healthy")
    os.kill(report["supervisor"]["pid"], signal.SIGKILL)
    wait_for(lambda: not procs.alive(report["supervisor"]["pid"]), 10, "supervisor gone")
    old = [s["pid"] for s in report["services"]] + [report["nats"]["pid"]]
    res = up_d(roots, fake_env)
    assert res.returncode == 0, res.stderr
    assert not any(procs.alive(p) for p in old)
    fresh = wait_for(lambda: (r := status(roots, fake_env))["healthy"] and r, 30, "healthy again")
    assert fresh["supervisor"]["pid"] != report["supervisor"]["pid"]


def test_nats_port_in_use_fails_fast(roots: Any, fake_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        res = roots.berth(
            "up", "-d", "-H", roots.sock, "--exec-root", str(roots.exec_root), "--data-root", str(roots.data_root),
            "--nats-port", str(port), env=fake_env, timeout=60,
        )
        assert res.returncode == 1
        assert time.monotonic() - t0 < 15
        assert f"port {port} is in use" in res.stderr


def test_two_berths_on_one_external_nats(roots: Any, fake_env: dict[str, str], tmp_path: Any) -> None:
    """--nats-url: no embedded server; each berth's status counts only its own services' Pongs."""
    import shutil
    import tempfile
    from pathlib import Path

    from berth_kit.testing import nats_server

    other_base = Path(tempfile.mkdtemp(prefix="b-", dir="/tmp"))
    other_exec, other_data = other_base / "x", other_base / "d"
    with nats_server() as url:
        try:
            for exec_root, data_root in ((roots.exec_root, roots.data_root), (other_exec, other_data)):
                res = roots.berth(
                    "up", "-d", "-H", f"unix://{exec_root}/docker.sock", "--exec-root", str(exec_root), "--data-root", str(data_root),
                    "--nats-url", url, "--ready-timeout", "30", env=fake_env, timeout=60,
                )
                assert res.returncode == 0, res.stderr
            a = wait_for(lambda: (r := status(roots, fake_env))["healthy"] and r, 30, "first healthy")
            res = roots.berth("status", "--json", "--exec-root", str(other_exec), env=fake_env, timeout=30)
            b = json.loads(res.stdout)
            assert b["healthy"], b
            assert a["nats"] == {"url": url, "embedded": False, "reachable": True, "health": "healthy"}
            for report in (a, b):
                for s in report["services"]:
                    assert s["answered_pid"] == s["pid"]
            assert {s["pid"] for s in a["services"]}.isdisjoint(s["pid"] for s in b["services"])
        finally:
            roots.berth("down", "--exec-root", str(other_exec), env=fake_env, timeout=60)
            shutil.rmtree(other_base, ignore_errors=True)


def test_services_survive_the_forkserver_and_restart_through_its_successor(
    roots: Any, fake_env: dict[str, str]
) -> None:
    assert up_d(roots, fake_env).returncode == 0
    report = wait_for(lambda: (r := status(roots, fake_env))["healthy"] and r, 30, "healthy")
    forkserver = report["forkserver"]["pid"]
    services = by_name(report)
    # Forked, not exec'd: each service's parent is the forkserver, itself the supervisor's child.
    for s in services.values():
        assert procs.alive(s["pid"])
        with open(f"/proc/{s['pid']}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) == forkserver
    with open(f"/proc/{services['berth-engine']['pid']}/comm") as f:
        assert f.read().strip() == "berth-engine"

    os.kill(forkserver, signal.SIGKILL)
    successor = wait_for(
        lambda: (p := status(roots, fake_env)["forkserver"]["pid"]) not in (None, forkserver) and p,
        30,
        "a new forkserver",
    )
    after = by_name(status(roots, fake_env))
    for name, s in services.items():  # nothing was restarted
        assert after[name]["pid"] == s["pid"] and after[name]["restarts"] == 0

    # A service forked by the dead forkserver: its exit is still noticed (pidfd), and it comes
    # back forked by the new one.
    lifecycle = kill9_and_wait_restart(roots, fake_env, services["berth-lifecycle"])
    assert lifecycle["restarts"] == 1
    assert lifecycle["last_exit"] is None  # nobody could reap it for us
    with open(f"/proc/{lifecycle['pid']}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == successor

    res = roots.berth("down", "--exec-root", str(roots.exec_root), env=fake_env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert not procs.alive(successor)
    for s in after.values():
        assert not procs.alive(s["pid"])


def test_without_the_forkserver_each_service_is_its_own_interpreter(
    roots: Any, fake_env: dict[str, str]
) -> None:
    env = dict(fake_env, BERTH_FORKSERVER="0")
    assert up_d(roots, env).returncode == 0
    report = wait_for(lambda: (r := status(roots, env))["healthy"] and r, 30, "healthy")
    assert report["forkserver"]["pid"] is None
    for s in report["services"]:
        with open(f"/proc/{s['pid']}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[1:3] == [b"-m", s["module"].encode()]
    res = roots.berth("down", "--exec-root", str(roots.exec_root), env=env, timeout=60)
    assert res.returncode == 0, res.stderr


# --- the bus: generated credentials, one per service, and an external NATS -------------------


def test_up_generates_private_credentials_one_per_service(roots: Any, fake_env: dict[str, str]) -> None:
    res = up_d(roots, fake_env)
    assert res.returncode == 0, res.stderr
    report = wait_for(lambda: (r := status(roots, fake_env))["healthy"] and r, 30, "healthy")
    bus = roots.data_root / "nats"
    assert stat.S_IMODE(bus.stat().st_mode) == 0o700
    assert stat.S_IMODE((bus / SERVER_CONFIG).stat().st_mode) == 0o600
    log = (roots.exec_root / "berth.log").read_text()
    for name in by_name(report):
        assert stat.S_IMODE(creds_path(bus, name).stat().st_mode) == 0o600
        assert f"{name}: connected to NATS as {name}" in log  # each with its own identity
    answer = anonymous_nats_answer(report["nats"]["url"])
    assert "-ERR 'Authorization Violation'" in answer and "PONG" not in answer
    log = wait_for(
        lambda: (t := (roots.exec_root / "berth.log").read_text()) and "authentication error" in t and t,
        10,
        "nats-server's refusal in berth's log",
    )


def test_each_service_gets_only_its_own_credentials_path(roots: Any) -> None:
    from berth_cli.config import SERVICES, build_parser, up_config
    from berth_cli.supervisor import own_env, service_env

    cfg = up_config(build_parser().parse_args(["up", "--data-root", str(roots.data_root)]))
    env, listening = service_env(cfg, "nats://127.0.0.1:4222")
    for sock in listening.values():
        sock.close()
    assert cfg.bus_dir is not None
    for spec in SERVICES:
        mine = own_env(env, cfg.bus_dir, spec.name)
        assert mine[CREDS_ENV] == str(creds_path(cfg.bus_dir, spec.name))
        assert [k for k, v in mine.items() if str(cfg.bus_dir) in v] == [CREDS_ENV]


def test_external_nats_with_nats_creds(roots: Any, fake_env: dict[str, str], tmp_path: Path) -> None:
    bus = tmp_path / "bus"
    res = roots.berth("bus-init", str(bus), env=fake_env, timeout=30)
    assert res.returncode == 0, res.stderr
    with nats_server(config=bus / SERVER_CONFIG) as url:
        answer = anonymous_nats_answer(url)
        assert "-ERR 'Authorization Violation'" in answer and "PONG" not in answer
        res = up_d(roots, fake_env, "--nats-url", url, "--nats-creds", str(bus))
        assert res.returncode == 0, res.stderr
        report = wait_for(lambda: (r := status(roots, fake_env))["healthy"] and r, 30, "healthy")
        log = (roots.exec_root / "berth.log").read_text()
        for name in by_name(report):
            assert f"{name}: connected to NATS as {name}" in log
        roots.berth("down", "--exec-root", str(roots.exec_root), env=fake_env, timeout=60)


def test_external_nats_without_creds_says_what_happens(
    roots: Any, fake_env: dict[str, str], tmp_path: Path
) -> None:
    bus = tmp_path / "bus"
    roots.berth("bus-init", str(bus), env=fake_env, timeout=30)
    with nats_server(config=bus / SERVER_CONFIG) as url:
        res = roots.berth(
            "up", "-d", "-H", roots.sock, "--exec-root", str(roots.exec_root),
            "--data-root", str(roots.data_root), "--nats-url", url, "--ready-timeout", "4",
            env=fake_env, timeout=60,
        )  # fmt: skip
        assert res.returncode == 1
        log = (roots.exec_root / "berth.log").read_text()
        assert "--nats-url without --nats-creds" in log
        assert "berth-engine: NATS refused: nats: 'Authorization Violation'" in log, log


def test_nats_creds_that_are_not_there_are_refused(roots: Any, fake_env: dict[str, str], tmp_path: Path) -> None:
    res = up_d(roots, fake_env, "--nats-url", "nats://127.0.0.1:1", "--nats-creds", str(tmp_path))
    assert res.returncode == 1
    assert "--nats-creds: cannot read NATS credentials" in res.stderr + res.stdout


def test_nats_creds_needs_nats_url(roots: Any, fake_env: dict[str, str], tmp_path: Path) -> None:
    res = up_d(roots, fake_env, "--nats-creds", str(tmp_path))
    assert res.returncode == 2
    assert "--nats-creds needs --nats-url" in res.stderr


def test_bus_init_keeps_existing_credentials(roots: Any, fake_env: dict[str, str], tmp_path: Path) -> None:
    bus = tmp_path / "bus"
    roots.berth("bus-init", str(bus), env=fake_env, timeout=30)
    before = creds_path(bus, "berth-engine").read_text()
    res = roots.berth("bus-init", str(bus), "--line", "port: 4333", env=fake_env, timeout=30)
    assert res.returncode == 0, res.stderr
    assert creds_path(bus, "berth-engine").read_text() == before
    assert json.loads(before)["user"] == "berth-engine"
    assert "port: 4333" in (bus / SERVER_CONFIG).read_text().splitlines()
