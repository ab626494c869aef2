"""Process facts from /proc, and signalling one pid at a time (never a process group)."""

from __future__ import annotations

import os
import signal
import time


def start_ticks(pid: int) -> int:
    """The process's start time in clock ticks since boot, or 0 when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    # The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[19])


def _state_letter(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return stat[stat.rfind(b")") + 2 :].split()[0].decode()


def alive(pid: int, ticks: int = 0) -> bool:
    """True if pid runs (not a zombie) and, when ticks is given, is the same process we started."""
    if pid <= 0:
        return False
    letter = _state_letter(pid)
    if letter in ("", "Z", "X"):
        return False
    return not ticks or start_ticks(pid) == ticks


def signal_pid(pid: int, sig: int, ticks: int = 0) -> bool:
    """Signal one process if it is still the one we mean; False if it is gone."""
    if not alive(pid, ticks):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, ticks: int, timeout: float) -> bool:
    """Poll until the process is gone (it need not be our child); True if it went."""
    deadline = time.monotonic() + timeout
    while alive(pid, ticks):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def terminate_all(targets: list[tuple[int, int]], grace: float = 10.0) -> None:
    """SIGTERM to each, one shared grace period, then SIGKILL: for processes not our children."""
    live = [(pid, ticks) for pid, ticks in targets if signal_pid(pid, signal.SIGTERM, ticks)]
    deadline = time.monotonic() + grace
    for pid, ticks in live:
        wait_gone(pid, ticks, max(0.0, deadline - time.monotonic()))
    for pid, ticks in live:
        if signal_pid(pid, signal.SIGKILL, ticks):
            wait_gone(pid, ticks, 5.0)
