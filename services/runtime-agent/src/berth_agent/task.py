"""One container as the agent knows it: its bundle, what its shim last said, and its client."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from berth_contracts.agent import TaskState, TaskStatus

from berth_agent.shim.frames import ShimState, ShimStatus
from berth_agent.shimclient import ShimClient

# shim state.json status -> TaskState.status
_STATUS: dict[ShimStatus, TaskStatus] = {
    "init": "created",
    "created": "created",
    "running": "running",
    "paused": "paused",
    "stopped": "stopped",
    "deleted": "stopped",
}
ALIVE: tuple[ShimStatus, ...] = ("init", "created", "running", "paused")


@dataclass
class Task:
    id: str
    bundle: Path
    meta: dict[str, Any]  # meta.json: what re-adoption needs (open_stdin, tty)
    state: ShimState
    conn: ShimClient | None = None
    deleting: bool = False
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    network_released: anyio.Event | None = None  # set once the teardown begun at exit is done

    @property
    def alive(self) -> bool:
        return self.state["status"] in ALIVE

    @property
    def running(self) -> bool:
        return self.state["status"] in ("running", "paused")

    def to_state(self) -> TaskState:
        return TaskState(
            container_id=self.id,
            status=_STATUS.get(self.state["status"], "unknown"),
            pid=self.state["pid"],
            exit_code=self.state["exit_code"],
            oom_killed=self.state["oom_killed"],
            started_at=self.state["started_at"],
            exited_at=self.state["exited_at"],
        )


@dataclass
class AdoptedExecs:
    """What a (re)connected shim's hello said about execs the agent did not know."""

    finished: list[str] = field(default_factory=list)  # exited while no agent listened
    acknowledged: list[str] = field(default_factory=list)  # exits this agent already had
    with_stdin: list[str] = field(default_factory=list)  # running, with an open stdin
