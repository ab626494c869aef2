"""What the orchestrator keeps in the swarm's KV bucket: one JSON record per key.

Keys: `cluster`, `lease`, `node.<id>`, `service.<id>`, `task.<id>`, `seen.<id>`, `secret.<id>`,
`config.<id>`. A record's Docker
`Version.Index` is the KV revision of its last write: the bucket's stream sequence, which grows
across all keys as swarmkit's raft index does, and which every update names (compare and set).
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import msgspec
from berth_contracts.swarmnode import TaskState

Document = dict[str, Any]

CLUSTER_KEY = "cluster"
LEASE_KEY = "lease"


class ClusterRecord(msgspec.Struct, kw_only=True):
    id: str
    created_at: str
    updated_at: str
    spec: Document
    # The join tokens' parts: only the orchestrator's bus identity can read the bucket.
    ca_digest: str  # the tokens' middle part (swarmkit: the root CA's digest)
    worker_secret: str
    manager_secret: str
    # The routes between the managers' swarm servers (NATS cluster authorization); given to a
    # node that joins as a manager.
    route_user: str = ""
    route_password: str = ""
    # The swarm's root CA (swarmca): ca_digest is its digest. "" in a swarm made before berth
    # had one: its ports then stay without TLS.
    ca_cert: str = ""
    ca_key: str = ""
    # `swarm init --default-addr-pool/--default-addr-pool-mask-length/--data-path-port`: for
    # overlay networks, which berth does not have; kept and shown as swarmkit does.
    default_addr_pool: list[str] = msgspec.field(default_factory=lambda: ["10.0.0.0/8"])
    subnet_size: int = 24
    data_path_port: int = 4789
    # Autolock's unlock key (autolock.new_unlock_key; swarmkit's UnlockKeys): "" without it.
    unlock_key: str = ""

    def __repr__(self) -> str:  # never the tokens' parts or the unlock key (logs, tracebacks)
        return f"ClusterRecord(id={self.id!r})"


Role = Literal["manager", "worker"]
Availability = Literal["active", "pause", "drain"]


class NodeRecord(msgspec.Struct, kw_only=True):
    id: str
    berth_node: str  # the node's BERTH_NODE: how its engine names itself in heartbeats
    hostname: str
    created_at: str
    updated_at: str
    role: Role = "manager"
    availability: Availability = "active"
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    name: str = ""  # Spec.Name
    addr: str = ""
    listen: str = ""  # a manager's swarm port (HOST:PORT its NATS listens on for the other nodes)
    port: int = 2377  # the swarm port the node advertises
    routes_at: str = ""  # a manager's route port as the other managers reach it (HOST:PORT)
    # The bcrypt hash of the node's session password (its leaf user on the managers' NATS);
    # the node chose the password and keeps it. "" once the node left.
    leaf_password_hash: str = ""
    # Its certificate signing request (swarmca), signed once it is a manager: its certificate.
    cert_request: str = ""
    cert: str = ""
    # Demoted: its swarm server is still a JetStream peer of the managers' cluster until the
    # leader removes it (once the node serves as a worker, or is down).
    leaving_cluster: bool = False
    leaving_since: float = 0.0  # time.time() of its demotion
    # Its leaf_password_hash then: a worker promoted and demoted before it served as a manager
    # still has its worker's, which does not mean it stepped down (swarmlink.stepped_down).
    hash_at_demotion: str = ""
    engine_version: str = ""
    engine_labels: dict[str, str] = msgspec.field(default_factory=dict)  # its engine's --label
    generic_resources: list[str] = msgspec.field(default_factory=list)  # --node-generic-resource
    nano_cpus: int = 0
    memory_bytes: int = 0
    # time.time() of its last heartbeat: kept in its own key (`seen.<id>`, SeenRecord), so the
    # node's Version changes only when the node does; filled in by Snapshot.
    last_seen: float = 0.0


DOWN_AFTER = 6.0  # seconds without a heartbeat (engines beat every 2 s)


def node_ready(node: NodeRecord, now: float) -> bool:
    """Heard within DOWN_AFTER of `now` (a snapshot's read_at: Snapshot.ready)."""
    return now - node.last_seen <= DOWN_AFTER


class ServiceRecord(msgspec.Struct, kw_only=True):
    id: str
    created_at: str
    updated_at: str
    spec: Document
    spec_serial: int = 1  # +1 at every change of the task template: older tasks get replaced
    job_executed_at: str = ""  # a job's: when its iteration (spec_serial) began
    previous_spec: Document | None = None
    update_state: str = ""  # UpdateStatus.State: "", "updating", "completed", "rollback_completed"
    update_started_at: str = ""
    update_completed_at: str = ""
    update_message: str = ""

    def __repr__(self) -> str:  # never the spec: it may hold registry credentials (specs.PullOptions)
        return f"ServiceRecord(id={self.id!r})"


class TaskRecord(msgspec.Struct, kw_only=True):
    id: str
    service_id: str
    slot: int  # 0 for a global service's task
    node_id: str
    created_at: str
    updated_at: str
    spec_serial: int
    template: Document  # the service's TaskTemplate when the task was made
    desired_state: TaskState = "running"
    state: TaskState = "assigned"
    timestamp: str = ""  # of the last state change
    state_since: float = 0.0  # time.time() of the last state change (restart delays)
    restarts: list[float] = msgspec.field(default_factory=list)  # times this slot was restarted
    # The node's generic resources it holds (swarmkit's AssignedGenericResources): KIND=NAME
    # per named unit, or KIND=COUNT.
    assigned_generic: list[str] = msgspec.field(default_factory=list)
    message: str = ""
    err: str = ""
    container_id: str = ""
    pid: int = 0
    exit_code: int = 0

    def __repr__(self) -> str:  # never the template: it may hold registry credentials
        return f"TaskRecord(id={self.id!r}, service_id={self.service_id!r}, state={self.state!r})"


def task_name(svc: ServiceRecord, task: TaskRecord) -> str:
    """dockerd's name of a task and its container: <service>.<slot>.<task id>, or
    <service>.<node id>.<task id> without a slot (a global service's, a replicated job's slot
    0), as swarmkit's naming.Task."""
    return f"{svc.spec.get('Name') or svc.id}.{task.slot or task.node_id}.{task.id}"


class DataRecord(msgspec.Struct, kw_only=True):
    """A secret or a config (`secret.<id>`, `config.<id>`): Docker's spec, its Data in base64.
    Read only by the orchestrator's identity, given only to the nodes of tasks that use it."""

    kind: Literal["secret", "config"]
    id: str
    created_at: str
    updated_at: str
    spec: Document

    def payload(self) -> bytes:
        return base64.b64decode(str(self.spec.get("Data") or ""))

    def __repr__(self) -> str:  # never the data (logs, tracebacks)
        return f"DataRecord(kind={self.kind!r}, id={self.id!r})"


class SeenRecord(msgspec.Struct, kw_only=True):
    at: float


class LeaseRecord(msgspec.Struct, kw_only=True):
    holder: str
    until: float


Record = ClusterRecord | NodeRecord | ServiceRecord | TaskRecord | LeaseRecord | SeenRecord | DataRecord
Keyed = NodeRecord | ServiceRecord | TaskRecord | DataRecord


def key_of(record: Keyed) -> str:
    if isinstance(record, DataRecord):
        return f"{record.kind}.{record.id}"
    kind = {NodeRecord: "node", ServiceRecord: "service", TaskRecord: "task"}[type(record)]
    return f"{kind}.{record.id}"


def encode(record: Record) -> bytes:
    return msgspec.json.encode(record)


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "node": msgspec.json.Decoder(NodeRecord),
    "service": msgspec.json.Decoder(ServiceRecord),
    "task": msgspec.json.Decoder(TaskRecord),
    "seen": msgspec.json.Decoder(SeenRecord),
    "secret": msgspec.json.Decoder(DataRecord),
    "config": msgspec.json.Decoder(DataRecord),
    CLUSTER_KEY: msgspec.json.Decoder(ClusterRecord),
    LEASE_KEY: msgspec.json.Decoder(LeaseRecord),
}


def decode(key: str, value: bytes) -> Record:
    record: Record = _DECODERS[key.split(".", 1)[0]].decode(value)
    return record
