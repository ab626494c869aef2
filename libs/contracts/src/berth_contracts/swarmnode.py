"""The node engines' session with the orchestrator (swarmkit's dispatcher): every few seconds
a node's engine sends a NodeHeartbeat with its tasks' states, and the answer lists the tasks
the node should hold (NodeAssignments), each a container to run (TaskAssignment)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from berth_contracts.base import Command, Reply
from berth_contracts.docker import HealthConfig, HostConfig

DataKind = Literal["secret", "config"]  # what a TaskFile holds (swarm.py's /secrets, /configs)


TaskState = Literal[
    "new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running",
    "complete", "shutdown", "failed", "rejected", "remove", "orphaned",
]  # fmt: skip


class TaskReport(msgspec.Struct, frozen=True):
    """What a node's engine saw of one of its tasks."""

    task_id: str
    state: TaskState
    message: str = ""
    err: str = ""
    container_id: str = ""
    pid: int = 0
    exit_code: int = 0


class HostPort(msgspec.Struct, frozen=True):
    """A port published in host mode (`--publish mode=host,...`): on the node running the task."""

    target: int
    published: int = 0  # 0: an ephemeral port, as dockerd picks one
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"


class TaskFile(msgspec.Struct, frozen=True):
    """A secret's or config's data as a file in a task's container (swarmkit's SecretReference
    or ConfigReference with its data): the node writes it and mounts it read-only there."""

    kind: DataKind
    object_id: str
    target: str  # an absolute path in the container
    # None: the node holds the task's files already (NodeHeartbeat.files_held): the data is
    # sent only while the node may create the task's container, not at every beat.
    data: bytes | None
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444

    def __repr__(self) -> str:  # never the data (logs, tracebacks)
        return f"TaskFile(kind={self.kind!r}, object_id={self.object_id!r}, target={self.target!r})"


class TaskAssignment(msgspec.Struct, frozen=True):
    """A task the orchestrator gave this node: the container to run, named and labelled as
    dockerd names and labels a task's container."""

    task_id: str
    desired_state: TaskState
    container_name: str
    image: str
    labels: dict[str, str]
    command: list[str] | None = None  # ContainerSpec.Command: the entrypoint
    args: list[str] | None = None
    env: list[str] | None = None
    workdir: str = ""
    user: str = ""
    hostname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stop_signal: str = ""
    stop_grace_seconds: int | None = None
    init: bool | None = None
    read_only: bool = False
    nano_cpus: int = 0
    memory_bytes: int = 0
    ports: list[HostPort] = msgspec.field(default_factory=list)
    mounts: list[dict[str, Any]] = msgspec.field(default_factory=list)  # Docker's Mount objects
    healthcheck: HealthConfig | None = None
    # The rest of its HostConfig as moby's container adapter makes it from the task template
    # (caps, groups, hosts, DNS, sysctls, ulimits, privileges, log driver); the fields above
    # are set over it.
    host_config: HostConfig | None = None
    files: list[TaskFile] = msgspec.field(default_factory=list)  # its secrets and configs
    # The service's `--with-registry-auth` credentials, for the pull of a missing image.
    registry_auth: str = ""
    # A spec the orchestrator could not make (a template): the node fails the task with it.
    error: str = ""

    def __repr__(self) -> str:  # never the credentials (logs, tracebacks)
        return f"TaskAssignment(task_id={self.task_id!r}, container_name={self.container_name!r})"


class NodeHeartbeat(Command, frozen=True):
    """Every engine sends one every few seconds: node liveness, task states, and in reply the
    tasks it should run. Not in a swarm: the reply says so and the engine removes any task
    containers it still has."""

    node: str  # BERTH_NODE
    hostname: str
    addr: str = ""
    engine_version: str = ""
    nano_cpus: int = 0
    memory_bytes: int = 0
    tasks: list[TaskReport] = msgspec.field(default_factory=list)
    engine_labels: dict[str, str] = msgspec.field(default_factory=dict)  # `berth up --label`s
    # Tasks whose secret and config files it wrote (for a container it has or makes): no data.
    files_held: list[str] = msgspec.field(default_factory=list)
    # `berth up --node-generic-resource`s (dockerd's): KIND=COUNT, or KIND=NAME per named unit.
    generic_resources: list[str] = msgspec.field(default_factory=list)


class NodePromotion(msgspec.Struct, frozen=True, kw_only=True):
    """A worker made a manager (`docker node promote`), told over its own session: the routes
    into the managers' cluster, as a manager join's answer gives them."""

    cluster: str
    routes: list[str]
    route_user: str
    route_password: str
    cert: str = ""  # its manager certificate (PEM) for the key it made when it joined
    ca_cert: str = ""
    route_pins: list[str] = msgspec.field(default_factory=list)  # the managers' keys its routes admit

    def __repr__(self) -> str:  # never the route password (logs, tracebacks)
        return f"NodePromotion(cluster={self.cluster!r}, routes={self.routes!r})"


class NodeAssignments(Reply, frozen=True):
    in_swarm: bool
    node_id: str = ""
    tasks: list[TaskAssignment] = msgspec.field(default_factory=list)
    # The managers' swarm ports (HOST:PORT): a worker links to each, so it outlives any one.
    managers: list[str] = msgspec.field(default_factory=list)
    promotion: NodePromotion | None = None  # this worker is now a manager
