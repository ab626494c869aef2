"""docker top / update / stats on the node: `runc ps` + host `ps`, `runc update`, cgroup files.

Cgroup v1 (the init's cgroup, /berth/<id> unless --cgroup-parent moved it); on a cgroup v2 host the
unified equivalents are read where there is one.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import anyio
from berth_common.gotime import rfc3339nano
from berth_contracts.agentops import TaskStatsSample, TaskTopResult, TaskUpdate
from berth_contracts.errors import InternalError, InvalidParameter

CGROUP = Path("/sys/fs/cgroup")
RUNC_TIMEOUT = 30.0
USER_HZ = os.sysconf("SC_CLK_TCK")
NO_LIMIT = 0x7FFFFFFFFFFFF000  # what cgroup v1 reports as "unlimited" (rounded to pages)


async def run(cmd: list[str]) -> str:
    with anyio.fail_after(RUNC_TIMEOUT):
        result = await anyio.run_process(cmd, check=False)
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace").strip()
        raise InternalError(err.splitlines()[-1] if err else f"{cmd[0]} failed")
    return result.stdout.decode(errors="replace")


async def top(runc: list[str], cid: str, ps_args: str) -> TaskTopResult:
    """moby's ContainerTop: the host's ps output, rows of the container's pids only."""
    pids = set(json.loads(await run([*runc, "ps", "--format", "json", cid]) or "[]"))
    try:
        args = shlex.split(ps_args or "-ef")
    except ValueError as exc:
        raise InvalidParameter(f"ps: {exc}") from None
    try:
        out = await run(["ps", *args])
    except InternalError as exc:
        raise InternalError(f"Error running ps: {exc}") from None
    lines = out.splitlines()
    if not lines:
        return TaskTopResult(titles=[], processes=[])
    titles = lines[0].split()
    if "PID" not in titles:
        raise InternalError("Couldn't find PID field in ps output")
    pid_col = titles.index("PID")
    processes = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= pid_col or not fields[pid_col].isdigit():
            continue
        if int(fields[pid_col]) in pids:
            # The last column (the command) may hold spaces: keep it whole.
            head = line.split(None, len(titles) - 1)
            processes.append(head)
    return TaskTopResult(titles=titles, processes=processes)


async def update(runc: list[str], cmd: TaskUpdate) -> None:
    flags: list[str] = []
    if cmd.memory:
        flags += ["--memory", str(cmd.memory)]
    if cmd.memory_swap:
        flags += ["--memory-swap", str(cmd.memory_swap)]
    if cmd.cpu_shares:
        flags += ["--cpu-share", str(cmd.cpu_shares)]
    if cmd.cpu_period:
        flags += ["--cpu-period", str(cmd.cpu_period)]
    if cmd.cpu_quota:
        flags += ["--cpu-quota", str(cmd.cpu_quota)]
    if cmd.pids_limit:
        flags += ["--pids-limit", str(cmd.pids_limit)]
    if flags:
        try:
            await run([*runc, "update", *flags, cmd.container_id])
        except InternalError as exc:
            raise InternalError(f"Cannot update container {cmd.container_id}: {exc}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _int(path: Path) -> int:
    text = _read(path).strip()
    return int(text) if text.lstrip("-").isdigit() else 0


def _kv(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _system_cpu_ns() -> int:
    """Host CPU time in ns as Docker computes it: the sum of the first /proc/stat line."""
    for line in _read(Path("/proc/stat")).splitlines():
        if line.startswith("cpu "):
            ticks = sum(int(x) for x in line.split()[1:8])
            return ticks * 1_000_000_000 // USER_HZ
    return 0


def _networks(pid: int) -> dict[str, dict[str, int]]:
    nets: dict[str, dict[str, int]] = {}
    if pid <= 0:
        return nets
    for line in _read(Path(f"/proc/{pid}/net/dev")).splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        v = [int(x) for x in rest.split()]
        if name == "lo" or len(v) < 16:
            continue
        nets[name] = {
            "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
            "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
        }  # fmt: skip
    return nets


def _blkio(path: Path) -> list[tuple[int, int, str, int]]:
    entries: list[tuple[int, int, str, int]] = []
    for line in _read(path).splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, _, minor = parts[0].partition(":")
            entries.append((int(major), int(minor), parts[1], int(parts[2])))
    return entries


def _cgroup_of(pid: int, controller: str) -> str:
    """The cgroup v1 path of `pid` in `controller` (relative to its mount), "" if unknown."""
    for line in _read(Path(f"/proc/{pid}/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path.lstrip("/")
    return ""


def stats(cid: str, pid: int) -> TaskStatsSample:
    """One reading of the container's cgroups (blocking file reads: run in a thread)."""
    rel = _cgroup_of(pid, "memory") or f"berth/{cid}"  # `--cgroup-parent` moves it
    cpu = CGROUP / "cpuacct" / rel
    mem = CGROUP / "memory" / rel
    cpu_stat = _kv(cpu / "cpuacct.stat")
    limit = _int(mem / "memory.limit_in_bytes")
    return TaskStatsSample(
        read=rfc3339nano(time.time_ns()),
        cpu_total=_int(cpu / "cpuacct.usage"),
        cpu_percpu=[int(x) for x in _read(cpu / "cpuacct.usage_percpu").split()],
        cpu_user=cpu_stat.get("user", 0) * 1_000_000_000 // USER_HZ,
        cpu_kernel=cpu_stat.get("system", 0) * 1_000_000_000 // USER_HZ,
        system_cpu=_system_cpu_ns(),
        online_cpus=os.cpu_count() or 1,
        throttling=_kv(CGROUP / "cpu" / rel / "cpu.stat"),
        mem_usage=_int(mem / "memory.usage_in_bytes"),
        mem_max_usage=_int(mem / "memory.max_usage_in_bytes"),
        mem_failcnt=_int(mem / "memory.failcnt"),
        mem_limit=limit if 0 < limit < NO_LIMIT else _host_memory(),
        mem_stats=_kv(mem / "memory.stat"),
        pids_current=_int(CGROUP / "pids" / rel / "pids.current"),
        pids_limit=_int(CGROUP / "pids" / rel / "pids.max"),
        blkio=_blkio(CGROUP / "blkio" / rel / "blkio.throttle.io_service_bytes"),
        networks=_networks(pid),
    )


def _host_memory() -> int:
    """Docker reports the host's memory as the limit of an unlimited container."""
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0
