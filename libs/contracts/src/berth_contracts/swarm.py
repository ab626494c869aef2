"""Swarm mode on subjects.ORCHESTRATOR_RPC: the Engine API's /swarm, /nodes, /services and
/tasks, served by the orchestrator (the manager role), and the node engines' sessions with it
(NodeHeartbeat, in `swarmnode`: what swarmkit's dispatcher does).

Docker's swarm objects (Swarm, Node, Service, Task and their specs) are large and versioned
by the API; they cross the wire as the JSON documents the Engine API defines (`DockerObject`),
built and checked by the orchestrator. What berth itself reads (a task's container spec, its
state) is typed here.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from berth_contracts.base import Command, Done, Ping, Reply
from berth_contracts.identifiers import Identifier, Subject
from berth_contracts.swarmnode import DataKind, NodeHeartbeat

Filters = dict[str, list[str]]
Document = dict[str, Any]  # one Engine API JSON object, as dockerd answers it


# --- /swarm ------------------------------------------------------------------------------------
class SwarmInit(Command, frozen=True):
    node: str  # BERTH_NODE of the engine whose gateway received the request
    hostname: str
    advertise_addr: str = ""
    listen_addr: str = "0.0.0.0:2377"
    spec: Document = msgspec.field(default_factory=dict)
    force_new_cluster: bool = False
    # For overlay networks (which berth does not have): kept and shown, as swarmkit does.
    default_addr_pool: list[str] = msgspec.field(default_factory=list)
    subnet_size: int = 0
    data_path_port: int = 0


class SwarmInitialised(Reply, frozen=True):
    node_id: str


class SwarmJoin(Command, frozen=True):
    node: str
    remote_addrs: list[str]
    join_token: str
    hostname: str = ""
    advertise_addr: str = ""
    listen_addr: str = "0.0.0.0:2377"

    def __repr__(self) -> str:  # never the token (logs, tracebacks)
        return f"SwarmJoin(node={self.node!r}, remote_addrs={self.remote_addrs!r})"


class SwarmInspect(Command, frozen=True):
    pass


class SwarmLeave(Command, frozen=True):
    node: str
    force: bool = False


class SwarmUpdate(Command, frozen=True):
    version: int
    spec: Document
    rotate_worker_token: bool = False
    rotate_manager_token: bool = False
    rotate_manager_unlock_key: bool = False


class SwarmUnlock(Command, frozen=True):
    """`docker swarm unlock`: the unlock key for this node's locked manager (autolock)."""

    unlock_key: str

    def __repr__(self) -> str:  # never the key (logs, tracebacks)
        return "SwarmUnlock()"


class SwarmUnlockKey(Command, frozen=True):
    pass


class UnlockKey(Reply, frozen=True):
    unlock_key: str  # "" without autolock

    def __repr__(self) -> str:
        return "UnlockKey()"


class LocalNodeInfo(Command, frozen=True):
    """`docker info`'s Swarm section for this node."""

    node: str


class NodeSwarmState(Reply, frozen=True):
    info: Document


# --- /nodes, /services, /tasks -------------------------------------------------------------------
class Listing(Command, frozen=True):
    """GET /nodes, /services, /tasks: Docker's filters."""

    filters: Filters = msgspec.field(default_factory=dict)


class ByRef(Command, frozen=True):
    """One object by ID, name or unique ID prefix (swarmkit's lookup)."""

    ref: str


class SpecUpdate(ByRef, frozen=True):
    """POST /<object>/{id}/update?version=N: the spec replaces the one read at that version."""

    version: int
    spec: Document


class NodeList(Listing, frozen=True):
    pass


class NodeInspect(ByRef, frozen=True):
    pass


class NodeUpdate(SpecUpdate, frozen=True):
    pass


class NodeRemove(ByRef, frozen=True):
    force: bool = False


class ServiceCreate(Command, frozen=True):
    spec: Document
    # `--with-registry-auth`: the client's X-Registry-Auth (Docker's base64url AuthConfig), kept
    # with the service as swarmkit keeps it (ContainerSpec.PullOptions) for its nodes' pulls.
    registry_auth: str = ""

    def __repr__(self) -> str:  # never the credentials (logs, tracebacks)
        return f"ServiceCreate(name={self.spec.get('Name')!r})"


class ServiceCreated(Reply, frozen=True):
    id: str
    warnings: list[str] = msgspec.field(default_factory=list)


class ServiceList(Listing, frozen=True):
    status: bool = False  # ?status=true: ServiceStatus counts (API 1.41)


class ServiceInspect(ByRef, frozen=True):
    insert_defaults: bool = False  # ?insertDefaults=true: swarmkit's defaults filled in


class ServiceUpdate(SpecUpdate, frozen=True):
    rollback: Literal["", "previous"] = ""
    registry_auth: str = ""  # as ServiceCreate's; "" keeps the credentials of registry_auth_from
    registry_auth_from: Literal["spec", "previous-spec"] = "spec"

    def __repr__(self) -> str:  # never the credentials (logs, tracebacks)
        return f"ServiceUpdate(ref={self.ref!r}, version={self.version!r})"


class ServiceRemove(ByRef, frozen=True):
    pass


class TaskList(Listing, frozen=True):
    pass


class TaskInspect(ByRef, frozen=True):
    pass


class ServiceLogs(Command, frozen=True):
    """GET /services/{id}/logs (task=False) or /tasks/{id}/logs (task=True): LogsStarted once
    the service or task was found, then LogBatch messages on stream_subject (lines carry the
    node, service and task IDs in attrs), paced as a container's log replay is."""

    ref: str
    stream_subject: Subject
    task: bool = False
    stdout: bool = True
    stderr: bool = True
    follow: bool = False
    tail: int = -1  # -1 = all; per task, as swarmkit's
    since: float = 0.0


# --- /secrets and /configs: data kept in the swarm, given to tasks as files -----------------------


class DataCreate(Command, frozen=True):
    """POST /secrets/create or /configs/create: Docker's SecretSpec or ConfigSpec (Data in
    base64, as the API sends it)."""

    kind: DataKind
    spec: Document

    def __repr__(self) -> str:  # never the data (logs, tracebacks)
        return f"DataCreate(kind={self.kind!r})"


class DataCreated(Reply, frozen=True):
    id: str


class DataList(Listing, frozen=True, kw_only=True):
    kind: DataKind


class DataInspect(ByRef, frozen=True):
    kind: DataKind


class DataUpdate(SpecUpdate, frozen=True):
    """Only the labels may change (swarmkit's words otherwise)."""

    kind: DataKind

    def __repr__(self) -> str:
        return f"DataUpdate(kind={self.kind!r}, ref={self.ref!r})"


class DataRemove(ByRef, frozen=True):
    kind: DataKind


class DockerObject(Reply, frozen=True):
    item: Document


class DockerObjects(Reply, frozen=True):
    items: list[Document]


# --- between nodes: joining, and a worker's session with the managers ---------------------------
class NodeJoin(Command, frozen=True):
    """A node asks a manager to admit it (subjects.SWARM_JOIN). The bus already checked that
    it holds a join token (its leaf credentials derive from the token's secret); the token
    says which role. The node chose its own session password and sends only its bcrypt hash:
    the manager never holds it, and no other joiner can read it."""

    node: str  # BERTH_NODE
    hostname: str
    join_token: str
    addr: str  # the address the node advertises
    password_hash: str  # a worker's; a manager links by routes instead
    engine_version: str = ""
    listen: str = ""  # HOST:PORT of the node's own swarm port, should it become a manager
    # A certificate signing request for its key (kept by the node), naming its addresses:
    # signed when it is (or becomes) a manager.
    cert_request: str = ""

    def __repr__(self) -> str:  # never the token (logs, tracebacks)
        return f"NodeJoin(node={self.node!r}, addr={self.addr!r})"


class NodeJoined(Reply, frozen=True):
    """The answer, on a subject only the holders of the same token may read: a manager's
    carries the credentials of the routes between the managers' swarm servers."""

    node_id: str
    cluster_id: str
    managers: list[str]  # the managers' swarm ports (HOST:PORT)
    role: str = "worker"
    cluster: str = ""  # the managers' NATS cluster name
    routes: list[str] = msgspec.field(default_factory=list)  # the managers' route ports (HOST:PORT)
    route_user: str = ""
    route_password: str = ""
    cert: str = ""  # a manager's certificate (PEM), for the key it made
    ca_cert: str = ""
    route_pins: list[str] = msgspec.field(default_factory=list)  # the managers' keys its routes admit

    def __repr__(self) -> str:  # never the route password (logs, tracebacks)
        return f"NodeJoined(node_id={self.node_id!r}, role={self.role!r}, managers={self.managers!r})"


class NodeLeave(Command, frozen=True):
    """A worker leaves (`docker swarm leave` on it): its node shows Down, as in dockerd."""

    node: str


class NodeLogs(Command, frozen=True):
    """A manager asks a task's node (subjects.swarm_logs) for its container's log: LogsStarted
    (answered under subjects.swarm_log_stream), then LogBatch messages on stream_subject, with
    checkpoints answered under ack_prefix (the node's own subjects.swarm_log_acks)."""

    task_id: Identifier  # the node reads only a task's container (named <service>.<slot>.<task id>)
    container_id: Identifier
    stream_subject: Subject
    ack_prefix: Subject
    stdout: bool = True
    stderr: bool = True
    follow: bool = False
    tail: int = -1
    since: float = 0.0


NodeSession = NodeHeartbeat | NodeLeave | Ping
NodeLogSource = NodeLogs | Ping
NodeAdmission = NodeJoin | Ping


OrchestratorRequest = (
    SwarmInit
    | SwarmJoin
    | SwarmInspect
    | SwarmLeave
    | SwarmUpdate
    | SwarmUnlock
    | SwarmUnlockKey
    | LocalNodeInfo
    | NodeList
    | NodeInspect
    | NodeUpdate
    | NodeRemove
    | ServiceCreate
    | ServiceList
    | ServiceInspect
    | ServiceUpdate
    | ServiceRemove
    | TaskList
    | TaskInspect
    | ServiceLogs
    | DataCreate
    | DataList
    | DataInspect
    | DataUpdate
    | DataRemove
    | NodeHeartbeat
    | Ping
)

__all__ = ["Done", "OrchestratorRequest"]
