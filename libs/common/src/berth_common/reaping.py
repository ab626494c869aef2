"""Collect every child that has exited, without blocking (after SIGCHLD or a wake-up)."""

from __future__ import annotations

import os
from collections.abc import Iterator


def exited_children() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of each exited child, until none is left to collect."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status
