"""The node engines' side of the orchestrator (swarmkit's dispatcher): a heartbeat brings the
node's task states and takes back the tasks the node should hold.

A task's state only moves forward (a late report never turns a failed task back into a running
one) and only its own node may report it.
"""

from __future__ import annotations

import contextlib
import time
from typing import get_args

from berth_common.gotime import rfc3339nano
from berth_contracts.errors import Conflict
from berth_contracts.swarmnode import (
    NodeAssignments,
    NodeHeartbeat,
    NodePromotion,
    TaskAssignment,
    TaskFile,
    TaskReport,
    TaskState,
)

from berth_orchestrator import placement, specdoc, specs, taskspec, templating
from berth_orchestrator.lease import Leadership
from berth_orchestrator.membership import cluster_name, host_port, joined, route_addr, route_pins
from berth_orchestrator.reconcile import TERMINAL
from berth_orchestrator.records import (
    DataRecord,
    Document,
    NodeRecord,
    ServiceRecord,
    TaskRecord,
    task_name,
)
from berth_orchestrator.store import Snapshot, SwarmStore

# swarmkit's order of task states, as the contract's TaskState lists them.
_RANK = {state: i for i, state in enumerate(get_args(TaskState))}
# A node's `seen.<id>` key is written at most this often (each write is fsynced by JetStream);
# a node is down after records.DOWN_AFTER without one (records.node_ready). Under the
# engines' 2 s beat, so every beat is written: the key lags a node's last beat by no more.
_SEEN_WRITE_EVERY = 1.0


def promotion(snap: Snapshot, node: NodeRecord) -> NodePromotion | None:
    """What a worker promoted to manager needs to join the managers' cluster."""
    cluster = snap.cluster
    if cluster is None:
        return None
    routes = sorted(n.routes_at for n in snap.nodes.values() if n.role == "manager" and n.routes_at and n.id != node.id)
    return NodePromotion(
        cluster=cluster_name(cluster), routes=routes, route_user=cluster.route_user,
        route_password=cluster.route_password, cert=node.cert, ca_cert=cluster.ca_cert,
        route_pins=list(route_pins(snap.nodes.values())),
    )  # fmt: skip


def assignment(
    svc: ServiceRecord, task: TaskRecord, node: NodeRecord | None = None, data: dict[str, DataRecord] | None = None,
    with_data: bool = True,
) -> TaskAssignment:
    """with_data: the files' data too (a node that holds them already is not sent it again).
    A template that does not expand (templating.py) makes an assignment the node rejects."""
    name = task_name(svc, task)
    context = templating.context_of(svc, task, name, node)
    try:
        template = {**task.template, "ContainerSpec": templating.expand_container(specdoc.container_of(task.template), context)}
        files = task_files(template, data or {}, context if with_data else None)
    except templating.TemplateFailed as exc:
        return TaskAssignment(task_id=task.id, desired_state=task.desired_state, container_name=name, image="",
                              labels={}, error=exc.message)  # fmt: skip
    container = specdoc.container_of(template)
    nano_cpus, memory = taskspec.limits_of(template)
    grace = container.get("StopGracePeriod")
    env = [*(container.get("Env") or []), *placement.resource_env(task.assigned_generic)]
    labels = {str(k): str(v) for k, v in (container.get("Labels") or {}).items()}
    labels.update({
        "com.docker.swarm.node.id": task.node_id,
        "com.docker.swarm.service.id": svc.id,
        "com.docker.swarm.service.name": str(svc.spec.get("Name") or svc.id),
        "com.docker.swarm.task": "",
        "com.docker.swarm.task.id": task.id,
        "com.docker.swarm.task.name": name,
    })  # fmt: skip
    return TaskAssignment(
        task_id=task.id,
        desired_state=task.desired_state,
        container_name=name,
        image=str(container.get("Image", "")),
        labels=labels,
        command=container.get("Command") or None,
        args=container.get("Args") or None,
        env=env or None,
        workdir=str(container.get("Dir") or ""),
        user=str(container.get("User") or ""),
        hostname=str(container.get("Hostname") or ""),
        tty=bool(container.get("TTY")),
        open_stdin=bool(container.get("OpenStdin")),
        stop_signal=str(container.get("StopSignal") or ""),
        stop_grace_seconds=None if grace is None else max(0, int(grace) // 1_000_000_000),
        init=container.get("Init"),
        read_only=bool(container.get("ReadOnly")),
        nano_cpus=nano_cpus,
        memory_bytes=memory,
        ports=specs.host_ports(svc.spec),
        mounts=taskspec.mounts_of(template),
        healthcheck=taskspec.health_of(template),
        host_config=taskspec.host_config_of(template),
        files=files,
        registry_auth=specs.registry_auth_of(template),
    )


def task_files(
    template: Document, data: dict[str, DataRecord], context: templating.TemplateContext | None
) -> list[TaskFile]:
    """The task's secrets and configs, with their data (templated ones expanded in `context`)
    unless context is None: only the node that runs the task gets them."""
    out = []
    container = specdoc.container_of(template)
    for ref in taskspec.file_refs(template):
        record = data.get(ref.object_id)
        if record is not None and record.kind == ref.kind:  # removal of one in use is refused
            payload = None if context is None else templating.expand_payload(record, context, container, data)
            out.append(TaskFile(kind=record.kind, object_id=record.id, target=ref.target, data=payload,
                                uid=ref.uid, gid=ref.gid, mode=ref.mode))  # fmt: skip
    return out


def apply_report(task: TaskRecord, report: TaskReport, now: float) -> bool:
    """Fold one report into the task; True if it changed."""
    if task.state == report.state and task.container_id == report.container_id and task.pid == report.pid:
        return False
    if task.state in TERMINAL:
        return False  # an end is final: late news (a restarted engine's guess) changes nothing
    if _RANK.get(report.state, 0) < _RANK.get(task.state, 0):
        return False
    stamp = rfc3339nano()
    if task.state != report.state:
        task.timestamp = stamp
        task.state_since = now
    task.state = report.state
    task.message = report.message or task.message
    task.err = report.err
    task.container_id = report.container_id or task.container_id
    task.pid = report.pid
    task.exit_code = report.exit_code
    task.updated_at = stamp
    return True


class Dispatcher:
    def __init__(self, store: SwarmStore, leadership: Leadership) -> None:
        self.store = store
        self.leadership = leadership  # poked when a task ended: its restart is planned at once

    async def heartbeat(self, cmd: NodeHeartbeat, node_id: str = "") -> NodeAssignments:
        """node_id: the node whose session subject carried the beat (another node's engine,
        vouched for by its leaf credentials); "" for this node's own engine."""
        if not await self.store.in_swarm():  # every engine beats, in a swarm or not
            return NodeAssignments(in_swarm=False)
        snap = await self.store.load()
        if snap.cluster is None:
            return NodeAssignments(in_swarm=False)
        node = snap.nodes.get(node_id) if node_id else snap.node_by_berth_name(cmd.node)
        if node is not None and not node_id and node.leaf_password_hash and node.role == "worker":
            node = None  # a remote worker's name: only its own session speaks for it
        if node is None or node.berth_node != cmd.node:
            return NodeAssignments(in_swarm=False)
        now = time.time()
        if not node_id and node.leaf_password_hash and node.role == "manager":
            await self._promoted(snap, node)
        await self._seen(snap, node, cmd, now)
        for report in cmd.tasks:
            task = snap.tasks.get(report.task_id)
            if task is None or task.node_id != node.id:
                continue
            if apply_report(task, report, now):
                try:
                    await self.store.put(snap, task)
                except Conflict:
                    continue  # written since (the leader's plan): the next heartbeat reports again
                if task.state in TERMINAL or task.state == "running":
                    self.leadership.poke()
        tasks = []
        held = set(cmd.files_held)
        for task in snap.tasks.values():
            svc = snap.services.get(task.service_id)
            if task.node_id == node.id and svc is not None and task.state != "pending":
                # The files' data only while the node may still create the task's container.
                with_data = task.desired_state == "running" and task.id not in held
                tasks.append(assignment(svc, task, node, snap.data, with_data))
        if node_id and node.role == "manager" and not node.routes_at and node.listen:
            await self._route_to_promoted(snap, node)
        managers = sorted(joined(n.addr, n.port) for n in snap.nodes.values() if n.role == "manager" and n.listen)
        return NodeAssignments(
            in_swarm=True, node_id=node.id, tasks=tasks, managers=managers,
            promotion=promotion(snap, node) if node_id and node.role == "manager" else None,
        )  # fmt: skip

    async def _route_to_promoted(self, snap: Snapshot, node: NodeRecord) -> None:
        """A worker promoted by a lone manager is told now (this answer): from here on the
        manager routes to it (its server joins the cluster with it, swarmlink)."""
        node.routes_at = route_addr(node.addr, host_port(node.listen)[1])
        node.updated_at = rfc3339nano()
        with contextlib.suppress(Conflict):  # written since: the next beat tells it again
            await self.store.put(snap, node)

    async def _promoted(self, snap: Snapshot, node: NodeRecord) -> None:
        """A promoted worker beating through its own orchestrator serves as a manager now: its
        session (and the leaf user it had for it) ends."""
        node.leaf_password_hash = ""
        node.updated_at = rfc3339nano()
        try:
            await self.store.put(snap, node)
        except Conflict:
            pass  # the next beat clears it

    async def _seen(self, snap: Snapshot, node: NodeRecord, cmd: NodeHeartbeat, now: float) -> None:
        described = (
            cmd.hostname, cmd.addr or node.addr, cmd.engine_version, cmd.nano_cpus, cmd.memory_bytes, cmd.engine_labels,
            cmd.generic_resources,
        )  # fmt: skip
        try:
            known = (node.hostname, node.addr, node.engine_version, node.nano_cpus, node.memory_bytes, node.engine_labels,
                     node.generic_resources)  # fmt: skip
            if described != known:
                (node.hostname, node.addr, node.engine_version, node.nano_cpus, node.memory_bytes,
                 node.engine_labels, node.generic_resources) = described  # fmt: skip
                node.updated_at = rfc3339nano()
                await self.store.put(snap, node)
            if now - node.last_seen >= _SEEN_WRITE_EVERY:
                await self.store.put_seen(snap, node.id, now)
                node.last_seen = now
        except Conflict:
            pass  # a node update or another beat raced this one: the next beat writes
