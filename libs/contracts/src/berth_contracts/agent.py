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
from berth_contracts.identifiers import Identifier, Subject
from berth_contracts.lifecycle import Mount
from berth_contracts.networks import (
    NetworkAttachment,
    NetworkRelease,
    PortMapping,
    TaskNetworkUpdate,
)

__all__ = ["Done"]


class RLimit(msgspec.Struct, frozen=True):
    """One OCI process.rlimits entry (`--ulimit nofile=512:1024` is RLIMIT_NOFILE 512/1024)."""

    type: str
    soft: int
    hard: int


class DeviceMapping(msgspec.Struct, frozen=True):
    """`--device host[:container[:rwm]]`, as HostConfig.Devices carries it."""

    path_on_host: str
    path_in_container: str = ""
    permissions: str = "rwm"


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
    # None: the agent's default (NOFILE as containerd's unit gives); else exactly these.
    rlimits: list[RLimit] | None = None
    sysctls: dict[str, str] = msgspec.field(default_factory=dict)
    devices: list[DeviceMapping] = msgspec.field(default_factory=list)
    device_cgroup_rules: list[str] = msgspec.field(default_factory=list)
    group_add: list[str] = msgspec.field(default_factory=list)  # names resolved in the rootfs
    # Namespaces: "" private; "host"; "container:<full id>" joins a running task's.
    pid_mode: str = ""
    ipc_mode: str = "private"  # private | shareable | none | host | container:<id>
    uts_mode: str = ""
    cgroupns_mode: str = "host"  # host | private
    cgroup_parent: str = ""  # "" = berth's /berth
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    memory_reservation: int = 0
    memory_swappiness: int | None = None
    oom_kill_disable: bool = False
    masked_paths: list[str] | None = None  # None: Docker's defaults (none when privileged)
    readonly_paths: list[str] | None = None
    init: bool = False  # `--init`: docker-init (tini) as the container's pid 1
    # /etc/hosts records ("IP<TAB>names") after the defaults: --add-host's (host-gateway
    # resolved), then legacy links'.
    extra_hosts: list[str] = msgspec.field(default_factory=list)
    dns: list[str] = msgspec.field(default_factory=list)
    dns_search: list[str] = msgspec.field(default_factory=list)
    dns_options: list[str] = msgspec.field(default_factory=list)
    domainname: str = ""
    annotations: dict[str, str] = msgspec.field(default_factory=dict)  # OCI annotations (API 1.43)


class TaskLogConfig(msgspec.Struct, frozen=True):
    """How the shim keeps the container's output (HostConfig.LogConfig, checked by the engine)."""

    driver: Literal["json-file", "local", "none"] = "json-file"  # local: json-file's format too
    max_size: int = 0  # bytes a file may reach before it is rotated; 0 = never rotated
    max_files: int = 1  # files kept, the current one included (1 = truncated when full)


class TaskCreate(Command, frozen=True):
    container_id: Identifier
    spec: TaskSpec
    rootfs: list[Mount]
    # Start the process as soon as it is created (and networked): TaskCreate + TaskStart in one
    # call, one engine→agent round trip fewer per `docker run`. A failed start deletes the task.
    start: bool = False
    log: TaskLogConfig = msgspec.field(default_factory=TaskLogConfig)


class TaskCreated(Reply, frozen=True):
    pid: int
    log_path: str
    started_at: str = ""  # RFC 3339, set when TaskCreate.start was asked (and done)


class TaskStart(Command, frozen=True):
    container_id: Identifier


class TaskStarted(Reply, frozen=True):
    pid: int
    started_at: str  # RFC3339Nano


class TaskKill(Command, frozen=True):
    container_id: Identifier
    signal: int = 15
    all: bool = False


class TaskDelete(Command, frozen=True):
    """Delete the runc container and let the shim go; the log stays until TaskPurge."""

    container_id: Identifier


class TaskPurge(Command, frozen=True):
    """Forget the container entirely: its log and any state left on disk."""

    container_id: Identifier


class TaskGet(Command, frozen=True):
    container_id: Identifier


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

    container_id: Identifier
    stream_subject: Subject
    stdout: bool = True
    stderr: bool = True
    follow: bool = False
    tail: int = -1
    since: float = 0.0
    until: float = 0.0


class TaskResize(Command, frozen=True):
    """Set the window size of a TTY container's terminal (TIOCSWINSZ on the pty master)."""

    container_id: Identifier
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

    container_id: Identifier
    exec_id: Identifier
    process: ExecProcess


class TaskPause(Command, frozen=True):
    """Freeze the task's processes (runc pause, freezer cgroup); Done. Not running: Conflict."""

    container_id: Identifier


class TaskResume(Command, frozen=True):
    container_id: Identifier


class TaskExecStarted(Reply, frozen=True):
    pid: int


class TaskExecGet(Command, frozen=True):
    container_id: Identifier
    exec_id: Identifier


class TaskExecState(Reply, frozen=True):
    exec_id: str
    running: bool
    pid: int = 0
    exit_code: int = 0


class TaskExecResize(Command, frozen=True):
    container_id: Identifier
    exec_id: Identifier
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
