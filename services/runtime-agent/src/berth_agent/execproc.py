"""docker exec on the agent's side: the OCI process of an exec, and what is known of each exec.

The process starts from the task's own (config.json): same capabilities and rlimits, with the
exec's arguments, environment, working directory and user.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth_contracts.agent import ExecProcess, TaskExecState
from berth_contracts.errors import InternalError, InvalidParameter

from berth_agent.bundle import read_json
from berth_agent.hostspec import group_add_of, process_user
from berth_agent.users import resolve_user


@dataclass
class ExecRun:
    """One exec the agent started; kept until its task is deleted (exit code for inspect)."""

    exec_id: str
    container_id: str
    pid: int
    running: bool = True
    exit_code: int = 0

    def to_state(self) -> TaskExecState:
        return TaskExecState(
            exec_id=self.exec_id, running=self.running, pid=self.pid, exit_code=self.exit_code
        )


def exec_process(bundle: Path, proc: ExecProcess) -> dict[str, Any]:
    """The runc `--process` document for an exec in the task whose bundle this is."""
    config = read_json(bundle / "config.json")
    if config is None or not isinstance(config.get("process"), dict):
        raise InternalError(f"no OCI config in {bundle}")
    process: dict[str, Any] = copy.deepcopy(config["process"])
    process.pop("consoleSize", None)
    if proc.tty and proc.height and proc.width:
        # runc sizes the terminal before the process starts: no window of 0x0 to race with.
        process["consoleSize"] = {"height": proc.height, "width": proc.width}
    if not proc.args:
        raise InvalidParameter("No exec command specified")
    process["args"] = list(proc.args)
    process["terminal"] = proc.tty
    if proc.env:
        # The engine's environment for the exec, whole. Without HOME, runc sets the user's.
        process["env"] = list(proc.env)
    if proc.cwd:
        process["cwd"] = proc.cwd
    if proc.user:
        user = resolve_user(str(bundle / "rootfs"), proc.user)
        process["user"] = process_user(user, group_add_of(config))
    return process
