"""The Engine API's JSON for swarm objects, from the records (as dockerd 20.10 answers them)."""

from __future__ import annotations

import platform
from typing import Any

from berth_orchestrator import placement, specs, swarmca
from berth_orchestrator.ids import join_token
from berth_orchestrator.membership import joined
from berth_orchestrator.records import (
    ClusterRecord,
    Document,
    NodeRecord,
    ServiceRecord,
    TaskRecord,
)
from berth_orchestrator.store import Snapshot

HEARTBEAT_PERIOD_NS = 5_000_000_000  # dockerd's default; berth's engines beat every 2 s

DEFAULT_SWARM_SPEC: Document = {
    "Name": "default",
    "Labels": {},
    "Orchestration": {"TaskHistoryRetentionLimit": 5},
    "Raft": {
        "SnapshotInterval": 10000,
        "KeepOldSnapshots": 0,
        "LogEntriesForSlowFollowers": 500,
        "ElectionTick": 10,
        "HeartbeatTick": 1,
    },
    "Dispatcher": {"HeartbeatPeriod": HEARTBEAT_PERIOD_NS},
    "CAConfig": {"NodeCertExpiry": 7776000000000000},
    "TaskDefaults": {},
    "EncryptionConfig": {"AutoLockManagers": False},
}


def swarm_spec(given: Document, base: Document = DEFAULT_SWARM_SPEC) -> Document:
    """A SwarmSpec as swarmkit stores it: what the client leaves zero or empty (the CLI sends
    `"Raft": {"ElectionTick": 0, ...}` at init) takes the default."""
    out = dict(base)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = swarm_spec(value, base[key])
        elif value not in (None, 0, "", {}) or key not in base:
            out[key] = value
    return out


def _version(snap: Snapshot, key: str) -> Document:
    return {"Index": snap.revision(key)}


def cluster_doc(snap: Snapshot, cluster: ClusterRecord, tokens: bool) -> Document:
    doc: Document = {
        "ID": cluster.id,
        "Version": _version(snap, "cluster"),
        "CreatedAt": cluster.created_at,
        "UpdatedAt": cluster.updated_at,
        "Spec": cluster.spec,
        "TLSInfo": swarmca.tls_info(cluster.ca_cert),
        "RootRotationInProgress": False,
        "DefaultAddrPool": cluster.default_addr_pool,
        "SubnetSize": cluster.subnet_size,
        "DataPathPort": cluster.data_path_port,
    }
    if tokens:  # GET /swarm only: the Info section never carries them
        doc["JoinTokens"] = {
            "Worker": join_token(cluster.ca_digest, cluster.worker_secret),
            "Manager": join_token(cluster.ca_digest, cluster.manager_secret),
        }
    return doc


def node_doc(snap: Snapshot, node: NodeRecord, leader_id: str) -> Document:
    ready = snap.ready(node)
    spec: Document = {"Labels": node.labels, "Role": node.role, "Availability": node.availability}
    if node.name:
        spec["Name"] = node.name
    doc: Document = {
        "ID": node.id,
        "Version": _version(snap, f"node.{node.id}"),
        "CreatedAt": node.created_at,
        "UpdatedAt": node.updated_at,
        "Spec": spec,
        "Description": {
            "Hostname": node.hostname,
            "Platform": {"Architecture": platform.machine(), "OS": "linux"},
            "Resources": {
                "NanoCPUs": node.nano_cpus, "MemoryBytes": node.memory_bytes,
                **({"GenericResources": placement.generic_docs(node.generic_resources)} if node.generic_resources else {}),
            },  # fmt: skip
            "Engine": {
                "EngineVersion": node.engine_version,
                **({"Labels": node.engine_labels} if node.engine_labels else {}),  # omitempty, as dockerd's
                "Plugins": [],
            },
            # Every node trusts the swarm's CA (a manager's certificate is one of its own).
            "TLSInfo": swarmca.tls_info(snap.cluster.ca_cert if snap.cluster else ""),
        },
        "Status": {"State": "ready" if ready else "down", "Addr": node.addr},
    }
    if node.role == "manager":
        doc["ManagerStatus"] = {
            "Leader": node.id == leader_id,
            "Reachability": "reachable" if ready else "unreachable",
            "Addr": f"{node.addr}:2377",
        }
    return doc


def service_doc(snap: Snapshot, svc: ServiceRecord, counts: dict[str, int] | None) -> Document:
    doc: Document = {
        "ID": svc.id,
        "Version": _version(snap, f"service.{svc.id}"),
        "CreatedAt": svc.created_at,
        "UpdatedAt": svc.updated_at,
        "Spec": specs.public_spec(svc.spec),
        "Endpoint": {"Spec": {"Mode": (svc.spec.get("EndpointSpec") or {}).get("Mode") or "vip"}},
    }
    if svc.previous_spec is not None:
        doc["PreviousSpec"] = specs.public_spec(svc.previous_spec)
    if specs.service_mode(svc.spec).job:
        doc["JobStatus"] = {"JobIteration": {"Index": svc.spec_serial}, "LastExecution": svc.job_executed_at}
    if svc.update_state:
        status: Document = {"State": svc.update_state, "StartedAt": svc.update_started_at}
        if svc.update_completed_at:
            status["CompletedAt"] = svc.update_completed_at
        status["Message"] = svc.update_message
        doc["UpdateStatus"] = status
    if counts is not None:
        doc["ServiceStatus"] = {
            "RunningTasks": counts["running"],
            "DesiredTasks": counts["desired"],
            "CompletedTasks": counts["completed"],
        }
    return doc


def task_doc(snap: Snapshot, task: TaskRecord, service: ServiceRecord | None) -> Document:
    status: Document = {
        "Timestamp": task.timestamp or task.updated_at,
        "State": task.state,
        "Message": task.message,
        "PortStatus": {},
    }
    if service is not None and task.state == "running":
        ports = [{"Protocol": p.protocol, "TargetPort": p.target, "PublishedPort": p.published,
                  "PublishMode": "host"} for p in specs.host_ports(service.spec)]  # fmt: skip
        if ports:
            status["PortStatus"] = {"Ports": ports}
    if task.err:
        status["Err"] = task.err
    if task.container_id:
        status["ContainerStatus"] = {
            "ContainerID": task.container_id,
            "PID": task.pid,
            "ExitCode": task.exit_code,
        }
    doc: Document = {
        "ID": task.id,
        "Version": _version(snap, f"task.{task.id}"),
        "CreatedAt": task.created_at,
        "UpdatedAt": task.updated_at,
        "Labels": {},
        "Spec": specs.public_template(task.template),
        "ServiceID": task.service_id,
        "NodeID": task.node_id,
        "Status": status,
        "DesiredState": task.desired_state,
    }
    if task.slot:
        doc["Slot"] = task.slot
    if task.assigned_generic:
        doc["AssignedGenericResources"] = placement.generic_docs(task.assigned_generic)
    if service is not None:
        doc["ServiceAnnotations"] = {"Name": service.spec.get("Name", "")}
        if specs.service_mode(service.spec).job:  # which run of the job (the CLI counts by it)
            doc["JobIteration"] = {"Index": task.spec_serial}
    return doc


def info_without_cluster(state: str = "inactive", addr: str = "", error: str = "") -> Document:
    """Outside a swarm; or locked (autolock: the state unreadable until `docker swarm unlock`)."""
    return {
        "NodeID": "",
        "NodeAddr": addr,
        "LocalNodeState": state,
        "ControlAvailable": False,
        "Error": error,
        "RemoteManagers": None,
    }


def info_active(snap: Snapshot, node: NodeRecord) -> dict[str, Any]:
    assert snap.cluster is not None
    managers = [n for n in snap.nodes.values() if n.role == "manager"]
    return {
        "NodeID": node.id,
        "NodeAddr": node.addr,
        "LocalNodeState": "active",
        "ControlAvailable": node.role == "manager",
        "Error": "",
        "RemoteManagers": [{"NodeID": m.id, "Addr": joined(m.addr, m.port)} for m in managers],
        "Nodes": len(snap.nodes),
        "Managers": len(managers),
        "Cluster": cluster_doc(snap, snap.cluster, tokens=False),
    }


def info_worker(notes: dict[str, str]) -> Document:
    """A worker's `docker info`: what it knows without the managers' state (dockerd's worker
    shows no cluster and no counts either)."""
    return {
        "NodeID": notes.get("node_id", ""),
        "NodeAddr": notes.get("addr", ""),
        "LocalNodeState": "active",
        "ControlAvailable": False,
        "Error": "",
        "RemoteManagers": [{"NodeID": "", "Addr": a} for a in notes.get("managers", "").split(",") if a],
        "Nodes": 0,
        "Managers": 0,
    }
