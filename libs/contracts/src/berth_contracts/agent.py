"""The runtime agent's RPC surface (subjects.agent_rpc(node)) and its task events.

A task is the running side of a container: one shim, one runc container, one init process.
The agent builds the OCI bundle from a TaskSpec, spawns the shim, and reports exits as TaskExit
events on subjects.task_events(node).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from berth_contracts.agentops import TaskStats, TaskTop, TaskUpdate
from berth_contracts.base import Command, Done, Ping, Reply
from berth_contracts.lifecycle import Mount
from berth_contracts.networks import (
    NetworkAttachment,
    NetworkRelease,
    PortMapping,
    TaskNetworkUpdate,
)

__all__ = ["Done"]


class TaskSpec(msgspec.Struct, frozen=True):
    """What the engine decided the container's process is; the agent turns it into config.json."""

    args: list[str]
    env: list[str]
    cwd: str = "/"
    user: str = ""  # "", "uid", "uid:gid", "name" or "name:group", resolved inside the rootfs
    hostname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    # "host", "container:<full id>" (join that task's namespace), else a namespace of its own
    # ("none", "bridge", a network's name) where `networks` are attached.
    network_mode: str = "none"
    memory: int = 0  # bytes; 0 = unlimited
    memory_swap: int = 0  # bytes; 0 = unset, -1 = unlimited swap
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    pids_limit: int = 0  # 0 = unlimited
    privileged: bool = False
    readonly_rootfs: bool = False
    cap_add: list[str] = msgspec.field(default_factory=list)
    cap_drop: list[str] = msgspec.field(default_factory=list)
    oom_score_adj: int = 0
    # "" is the default profile, "unconfined" none, anything else a profile's JSON (Docker's format).
    seccomp: str = ""
    no_new_privileges: bool = False
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    # Targets of volume mounts in TaskCreate.rootfs to fill from the image when the volume is
    # empty (Docker's copy-up); the path is resolved inside the container's rootfs.
    copy_up: list[str] = msgspec.field(default_factory=list)
    # Bridge networks to attach (netavark) and published ports; empty = loopback only.
    networks: list[NetworkAttachment] = msgspec.field(default_factory=list)
    port_mappings: list[PortMapping] = msgspec.field(default_factory=list)
    # /etc/hosts records ("IP<TAB>names") written after the defaults: legacy links' names.
    extra_hosts: list[str] = msgspec.field(default_factory=list)


class TaskCreate(Command, frozen=True):
    container_id: str
    spec: TaskSpec
    rootfs: list[Mount]
    # Start the process as soon as it is created (and networked): TaskCreate + TaskStart in one
    # call, one engine→agent round trip fewer per `docker run`. A failed start deletes the task.
    start: bool = False


class TaskCreated(Reply, frozen=True):
    pid: int
    log_path: str
    started_at: str = ""  # RFC 3339, set when TaskCreate.start was asked (and done)


class TaskStart(Command, frozen=True):
    container_id: str


class TaskStarted(Reply, frozen=True):
    pid: int
    started_at: str  # RFC3339Nano


class TaskKill(Command, frozen=True):
    container_id: str
    signal: int = 15
    all: bool = False


class TaskDelete(Command, frozen=True):
    """Delete the runc container and let the shim go; the log stays until TaskPurge."""

    container_id: str


class TaskPurge(Command, frozen=True):
    """Forget the container entirely: its log and any state left on disk."""

    container_id: str


class TaskGet(Command, frozen=True):
    container_id: str


TaskStatus = Literal["created", "running", "paused", "stopped", "unknown"]


class TaskState(Reply, frozen=True):
    container_id: str
    status: TaskStatus
    pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    started_at: str = ""
    exited_at: str = ""


class TaskListAll(Command, frozen=True):
    pass


class TaskStates(Reply, frozen=True):
    tasks: list[TaskState]


class TaskLogs(Command, frozen=True):
    """Stream the container's json-file log as LogBatch messages to stream_subject."""

    container_id: str
    stream_subject: str
    stdout: bool = True
    stderr: bool = True
    follow: bool = False
    tail: int = -1
    since: float = 0.0
    until: float = 0.0


class TaskResize(Command, frozen=True):
    """Set the window size of a TTY container's terminal (TIOCSWINSZ on the pty master)."""

    container_id: str
    height: int
    width: int


class ExecProcess(msgspec.Struct, frozen=True):
    """An extra process in a running task (docker exec), run through its shim with `runc exec`."""

    args: list[str]
    env: list[str] = msgspec.field(default_factory=list)  # the whole environment; [] = the task's
    cwd: str = ""  # "" = the task's working directory
    user: str = ""  # "" = the task's user; else resolved inside the rootfs like TaskSpec.user
    tty: bool = False
    open_stdin: bool = False
    privileged: bool = False
    height: int = 0  # initial window size (TTY only); 0 = leave it
    width: int = 0


class TaskExec(Command, frozen=True):
    """Start an exec process. Output goes to subjects.stdio_out(exec_id) (last chunk eof=True,
    published after its exit code is known to TaskExecGet); input comes on stdio_in(exec_id)."""

    container_id: str
    exec_id: str
    process: ExecProcess


class TaskPause(Command, frozen=True):
    """Freeze the task's processes (runc pause, freezer cgroup); Done. Not running: Conflict."""

    container_id: str


class TaskResume(Command, frozen=True):
    container_id: str


class TaskExecStarted(Reply, frozen=True):
    pid: int


class TaskExecGet(Command, frozen=True):
    container_id: str
    exec_id: str


class TaskExecState(Reply, frozen=True):
    exec_id: str
    running: bool
    pid: int = 0
    exit_code: int = 0


class TaskExecResize(Command, frozen=True):
    container_id: str
    exec_id: str
    height: int
    width: int


AgentRequest = (
    TaskCreate
    | TaskStart
    | TaskKill
    | TaskDelete
    | TaskPurge
    | TaskGet
    | TaskListAll
    | TaskLogs
    | TaskResize
    | TaskExec
    | TaskExecGet
    | TaskExecResize
    | TaskPause
    | TaskResume
    | TaskTop
    | TaskUpdate
    | TaskStats
    | TaskNetworkUpdate
    | NetworkRelease
    | Ping
)


class TaskExit(msgspec.Struct, frozen=True):
    """Published on subjects.task_events(node) when a container's init process has exited."""

    container_id: str
    pid: int
    exit_code: int  # 128+signal when killed by a signal
    oom_killed: bool
    exited_at: str  # RFC3339Nano
    node: str
