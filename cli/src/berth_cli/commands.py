"""The three commands: up, down, status."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import anyio

from berth_cli import daemon, forkclient, procs
from berth_cli.config import STATE_FILE, UpConfig, UsageError
from berth_cli.state import read_state
from berth_cli.supervisor import Supervisor, forkserver_enabled, reap_stale


def up(cfg: UpConfig) -> int:
    if cfg.detach:
        return daemon.start_detached(cfg)
    # Before logging and the event loop: the forkserver must be forked from a single thread.
    preforked = forkclient.prefork([s.module for s in cfg.services]) if forkserver_enabled() else None
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s berth %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        anyio.run(Supervisor(cfg, preforked).run, backend="asyncio")
    except UsageError as exc:
        print(f"berth: {exc}", file=sys.stderr)
        return 1
    return 0


def down(exec_root: Path, timeout: float) -> int:
    path = exec_root / STATE_FILE
    state = read_state(path)
    if state is None:
        if daemon.lock_is_held(exec_root):
            print(f"berth: a supervisor holds {exec_root} but wrote no state yet", file=sys.stderr)
            return 1
        print(f"berth is not running (exec root {exec_root})")
        return 0
    pid, ticks = state.supervisor_pid, state.supervisor_start_ticks
    if procs.alive(pid, ticks):
        procs.signal_pid(pid, signal.SIGTERM, ticks)
        # The supervisor is not our child: poll until it is gone.
        if not procs.wait_gone(pid, ticks, timeout):
            print(f"berth: supervisor (pid {pid}) did not stop within {timeout:.0f}s", file=sys.stderr)
            return 1
        print("berth stopped")
        return 0
    # The supervisor died without cleaning up: stop what it left, one pid at a time.
    reap_stale(path)
    print("berth stopped (the supervisor had died; stopped its leftover processes)")
    return 0


def bus_init(bus_dir: Path, settings: tuple[str, ...]) -> int:
    """Credentials for every bus identity (kept if present) and a nats-server config from the
    permission table: for an external NATS (--nats-url ... --nats-creds DIR)."""
    from berth_kit.busauth import write_bus_dir

    config = write_bus_dir(bus_dir, settings)
    print(f"wrote {config} (include its authorization block in your nats-server configuration)")
    print(f"then: berth up --nats-url nats://HOST:PORT --nats-creds {bus_dir}")
    return 0


def status(exec_root: Path, as_json: bool) -> int:
    state = read_state(exec_root / STATE_FILE)
    if state is None or not procs.alive(state.supervisor_pid, state.supervisor_start_ticks):
        report: dict[str, Any] = {"running": False, "healthy": False, "exec_root": str(exec_root)}
        if state is not None:
            report["stale_state"] = True
    else:
        # Imported here: nats, msgspec and the contracts cost the long-lived supervisor ~4.5 MiB
        # PSS it never needs (bench/README.md).
        from berth_cli import health

        report = anyio.run(health.collect, state, backend="asyncio")
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_human(report)
    return 0 if report["running"] else 1


def _print_human(report: dict[str, Any]) -> None:
    if not report["running"]:
        print(f"berth is not running (exec root {report['exec_root']})")
        return
    print(f"berth: supervisor pid {report['supervisor']['pid']}, healthy: {_yn(report['healthy'])}")
    if report["forkserver"]["pid"]:
        print(f"  services forked from forkserver pid {report['forkserver']['pid']}")
    print(f"  DOCKER_HOST={report['docker_host']}  (/_ping: {_yn(report['api']['ping'])})")
    nats = report["nats"]
    kind = f"embedded, pid {nats.get('pid')}" if nats["embedded"] else "external"
    print(f"  nats {nats['url']} ({kind}): reachable {_yn(nats['reachable'])}")
    print(f"  {'SERVICE':<22} {'PID':>8} {'STATE':<9} {'HEALTHY':<8} RESTARTS")
    for s in report["services"]:
        pid = s["pid"] if s["pid"] else "-"
        print(
            f"  {s['name']:<22} {pid:>8} {s['state']:<9} {_yn(s['healthy']):<8} {s['restarts']}"
        )


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"
