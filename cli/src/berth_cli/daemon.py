"""`berth up -d`: re-execute the supervisor in the background and wait until the API answers."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from berth_kit.diskmodes import lock_down_roots

from berth_cli import apiprobe, procs
from berth_cli.config import LOCK_FILE, UpConfig, tls_argv
from berth_cli.state import read_state
from berth_cli.supervisor import reap_stale

TAIL_LINES = 40


def lock_is_held(exec_root: Path) -> bool:
    try:
        fd = os.open(exec_root / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return False


def supervisor_argv(cfg: UpConfig) -> list[str]:
    argv = [sys.executable, "-m", "berth_cli", "up", "--daemonized"]
    for host in cfg.hosts:
        argv += ["-H", host]
    argv += ["--data-root", str(cfg.data_root), "--exec-root", str(cfg.exec_root)]
    argv += ["--nats-port", str(cfg.nats_port)]
    if cfg.nats_url:
        argv += ["--nats-url", cfg.nats_url]
    if cfg.nats_creds is not None:
        argv += ["--nats-creds", str(cfg.nats_creds)]
    argv += tls_argv(cfg.tls)
    argv += [f"--api-allow-origin={origin}" for origin in cfg.allow_origins]
    argv += [f"--label={label}" for label in cfg.labels]
    argv += [f"--node-generic-resource={term}" for term in cfg.node_generic_resources]
    return argv


def log_tail(path: Path, offset: int, lines: int = TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def start_detached(cfg: UpConfig) -> int:
    """Start the background supervisor; 0 once the API answers /_ping on the first -H and every
    service answers its health Ping."""
    lock_down_roots(cfg.data_root, cfg.exec_root)
    if lock_is_held(cfg.exec_root):
        old = read_state(cfg.state_path)
        pid = f" (pid {old.supervisor_pid})" if old else ""
        print(f"berth: already running with exec root {cfg.exec_root}{pid}", file=sys.stderr)
        return 1
    # Stop what a dead supervisor left behind before anything else: its gateway could still
    # answer /_ping on our socket and make us report a start that has not happened.
    reap_stale(cfg.state_path)
    fd = os.open(cfg.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # a berth.log made before (0644) too: services log what they get
    with os.fdopen(fd, "ab") as log:
        offset = log.tell()
        # Its own session: no controlling terminal, and no signal aimed at our process group
        # reaches it. It is reparented when we exit.
        proc = subprocess.Popen(
            supervisor_argv(cfg),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + cfg.ready_timeout
    while True:
        status = proc.poll()
        if status is not None:
            print(f"berth: the supervisor exited during start-up (status {status})", file=sys.stderr)
            _print_tail(cfg, offset)
            return 1
        if (
            _is_ours(cfg, proc.pid)
            and apiprobe.ping(cfg.docker_host, timeout=1.0, tls=cfg.api_tls)
            and _all_services_answer(cfg)
        ):
            print(f"berth is up (pid {proc.pid}). To use it:")
            print(apiprobe.use_hint(cfg), flush=True)
            return 0
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    print(
        f"berth: the API did not answer on {cfg.docker_host} within {cfg.ready_timeout:.0f}s;"
        " stopping",
        file=sys.stderr,
    )
    # A half-started berth in the background helps nobody: stop it the way `down` does.
    procs.signal_pid(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    _print_tail(cfg, offset)
    return 1


def _all_services_answer(cfg: UpConfig) -> bool:
    """Every service answers its health Ping: a `docker load` right after `up -d` must not meet
    a lifecycle that is still starting (the gateway answers /_ping before the others are ready)."""
    # Imported here: the health check pulls in nats-py, which the supervisor itself never needs.
    import anyio

    from berth_cli.health import collect

    state = read_state(cfg.state_path)
    if state is None:
        return False
    report = anyio.run(collect, state)
    return bool(report["healthy"])


def _is_ours(cfg: UpConfig, pid: int) -> bool:
    """The state file is the new supervisor's: it is past its own start-up checks."""
    state = read_state(cfg.state_path)
    return state is not None and state.supervisor_pid == pid


def _print_tail(cfg: UpConfig, offset: int) -> None:
    tail = log_tail(cfg.log_path, offset)
    if tail:
        print(f"--- last lines of {cfg.log_path} ---\n{tail}", file=sys.stderr)
