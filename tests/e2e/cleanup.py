"""Leave nothing behind after an e2e session: containers, shims, mounts, temp dirs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from berth_common.mounts import mountinfo


def _run(argv: list[str], timeout: float = 15) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def delete_containers(runc_root: Path) -> list[str]:
    """`runc delete -f` every container runc still knows under this root."""
    if not runc_root.exists():
        return []
    res = _run(["runc", "--root", str(runc_root), "list", "-q"])
    ids = res.stdout.split() if res and res.returncode == 0 else []
    for cid in ids:
        _run(["runc", "--root", str(runc_root), "delete", "-f", cid])
    return ids


def _mentions(pid: int, root: bytes) -> bool:
    # The root itself or a path under it, never merely a longer name that starts the same way.
    needles = (root + b"/", root + b"\0")
    for part in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{part}", "rb") as f:
                data = f.read()
        except OSError:
            return False
        if any(n in data for n in needles):
            return True
    return False


def kill_processes_of(root: Path) -> list[int]:
    """SIGKILL every process whose command line or environment names this temp root: services,
    the agent's zygote and shims (they inherit BERTH_EXEC_ROOT), nats-server (its store dir)."""
    needle = str(root).rstrip("/").encode()
    me = os.getpid()
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        if _mentions(pid, needle):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    return killed


def mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    return [point for point, _, _ in mountinfo() if point == str(root) or point.startswith(prefix)]


def unmount_all_under(root: Path) -> list[str]:
    """umount -l everything mounted under root, deepest first (repeat: mounts can stack)."""
    done: list[str] = []
    for _ in range(5):
        points = sorted(set(mounts_under(root)), key=lambda p: p.count("/"), reverse=True)
        if not points:
            break
        for point in points:
            _run(["umount", "-l", point])
            done.append(point)
    return done


def teardown_networks(exec_root: Path) -> list[str]:
    """netavark teardown of tasks the agent left attached (bridges, firewall rules, DNS)."""
    done = []
    for state in sorted((exec_root / "agent" / "netns").glob("*.json")):
        _run(
            ["/usr/lib/podman/netavark", "--config", str(exec_root / "agent" / "netavark"),
             "--rootless", "false", "-f", str(state), "teardown", str(state.with_suffix(""))],
            timeout=60,
        )  # fmt: skip
        done.append(state.stem)
    # The default bridge's keeper (berth_agent.netsetup): an agent killed with -9 left it.
    from berth_agent.netsetup import NetworkSetup

    done += NetworkSetup(exec_root).release_keepers()
    return done


def cleanup_roots(roots: list[Path], remove: bool = True) -> dict[str, list]:  # type: ignore[type-arg]
    report: dict[str, list] = {"containers": [], "killed": [], "unmounted": []}  # type: ignore[type-arg]
    for root in roots:
        report["containers"] += teardown_networks(root)
        report["containers"] += delete_containers(root / "runc")
    # Repeat: a supervisor that outlived `berth down` may start a service while we scan.
    for _ in range(3):
        killed = [pid for root in roots for pid in kill_processes_of(root)]
        if not killed:
            break
        report["killed"] += killed
        time.sleep(0.3)  # let the kernel finish tearing them down before unmounting
    for root in roots:
        report["unmounted"] += unmount_all_under(root)
    if remove:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    return report
