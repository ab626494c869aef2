"""The shim's state file and the cgroup facts it records at exit. Stdlib only.

<bundle>/state.json: a frames.ShimState, replaced atomically (write + rename) on every change.
"""

from __future__ import annotations

import json
import os

# typing costs memory in every shim; annotations are strings here, so import it for checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from berth_agent.shim.frames import ShimState


def new_state(cid: str, shim_pid: int = 0) -> ShimState:
    """A container's state before runc created it (or when its state file is lost)."""
    return {
        "id": cid,
        "status": "init",
        "pid": 0,
        "shim_pid": shim_pid,
        "started": False,
        "started_at": "",
        "exit_code": 0,
        "oom_killed": False,
        "exited_at": "",
        "process_tp": "",
        "process_start_ns": 0,
    }


def as_state(data: Mapping[str, object], cid: str) -> ShimState:
    """A state read from disk or a frame, with any key it lacks at its initial value."""
    state = new_state(cid)
    state.update({k: v for k, v in data.items() if k in state})  # type: ignore[typeddict-item]
    return state


def write_state(bundle: str, state: ShimState) -> None:
    path = os.path.join(bundle, "state.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def read_state(bundle: str) -> ShimState | None:
    try:
        with open(os.path.join(bundle, "state.json"), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return as_state(data, os.path.basename(bundle)) if isinstance(data, dict) else None


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
