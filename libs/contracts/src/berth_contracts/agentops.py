"""More runtime-agent commands: processes (top), resource updates, cgroup statistics."""

from __future__ import annotations

import msgspec

from berth_contracts.base import Command, Reply
from berth_contracts.identifiers import Identifier


class TaskTop(Command, frozen=True):
    """`ps <ps_args>` on the node, limited to the task's processes (moby's way)."""

    container_id: Identifier
    ps_args: str = "-ef"


class TaskTopResult(Reply, frozen=True):
    titles: list[str]
    processes: list[list[str]]


class TaskUpdate(Command, frozen=True):
    """`runc update` of a running task's limits; fields left at 0 stay as they are."""

    container_id: Identifier
    memory: int = 0
    memory_swap: int = 0  # -1 = unlimited
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    pids_limit: int = 0


class TaskStats(Command, frozen=True):
    container_id: Identifier


class TaskStatsSample(Reply, frozen=True):
    """One reading of the task's cgroups (v1 names; what Docker's stats JSON is made of)."""

    read: str  # RFC3339Nano
    cpu_total: int = 0  # ns
    cpu_percpu: list[int] = msgspec.field(default_factory=list)
    cpu_user: int = 0  # ns (from USER_HZ ticks)
    cpu_kernel: int = 0
    system_cpu: int = 0  # ns, host-wide (/proc/stat)
    online_cpus: int = 0
    throttling: dict[str, int] = msgspec.field(default_factory=dict)
    mem_usage: int = 0
    mem_max_usage: int = 0
    mem_failcnt: int = 0
    mem_limit: int = 0
    mem_stats: dict[str, int] = msgspec.field(default_factory=dict)
    pids_current: int = 0
    pids_limit: int = 0
    blkio: list[tuple[int, int, str, int]] = msgspec.field(
        default_factory=list
    )  # maj, min, op, bytes
    networks: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
