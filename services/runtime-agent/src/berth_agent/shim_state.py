"""The shim's state file and the cgroup facts it records at exit. Stdlib only.

<bundle>/state.json: {"id", "status": "init|created|running|stopped|deleted", "pid", "shim_pid",
"started", "started_at", "exit_code", "oom_killed", "exited_at", "process_tp",
"process_start_ns"}, replaced atomically (write + rename) on every change.
"""

from __future__ import annotations

import json
import os

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def write_state(bundle: str, state: dict[str, Any]) -> None:
    path = os.path.join(bundle, "state.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def read_state(bundle: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(bundle, "state.json"), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def cgroup_rel(container_id: str, bundle: str = "") -> str:
    """The container's cgroup below each controller: config.json's cgroupsPath (`--cgroup-parent`
    moves it), berth's default when there is no bundle to read."""
    try:
        with open(os.path.join(bundle, "config.json"), encoding="utf-8") as f:
            path = json.load(f)["linux"]["cgroupsPath"]
        if isinstance(path, str) and path:
            return path.lstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"berth/{container_id}"


def oom_killed(container_id: str, cgroup_root: str = "/sys/fs/cgroup", bundle: str = "") -> bool:
    """Whether the kernel OOM-killed something in the container's memory cgroup (v1 or v2)."""
    rel = cgroup_rel(container_id, bundle)
    for path in (
        os.path.join(cgroup_root, "memory", rel, "memory.oom_control"),
        os.path.join(cgroup_root, rel, "memory.events"),
    ):
        try:
            with open(path, encoding="ascii") as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value or 0) > 0:
                        return True
        except (OSError, ValueError):
            continue
    return False


def memory_failcnt(container_id: str, cgroup_root: str = "/sys/fs/cgroup", bundle: str = "") -> int:
    path = os.path.join(cgroup_root, "memory", cgroup_rel(container_id, bundle), "memory.failcnt")
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0
