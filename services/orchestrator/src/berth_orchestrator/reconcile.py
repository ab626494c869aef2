"""From services to tasks: what swarmkit's orchestrators, scheduler and restart supervisor do,
as one pure function of a snapshot (plan) that the leader applies every cycle.

- replicated services get one live task per slot 1..Replicas, global services one per eligible
  node; a live task is one whose desired state is running; jobs run their tasks to completion
  (`_Planner.job`);
- a task that ended is replaced after the restart policy's delay, unless the policy says no
  (condition none, on-failure after exit 0, max attempts reached within the window);
- a task whose node is down, drained or no longer matches the constraints is shut down and its
  slot placed again;
- a changed task template (service update) replaces the old tasks `parallelism` at a time,
  stop-first (the old one has ended before its replacement is made) or start-first;
- a removed service's tasks are deleted (their node's engine then removes the containers), and
  each slot keeps at most TaskHistoryRetentionLimit old tasks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from berth_common.gotime import rfc3339nano

from berth_orchestrator import placement, specdoc, specs, taskspec
from berth_orchestrator.ids import new_id
from berth_orchestrator.records import NodeRecord, ServiceRecord, TaskRecord, node_ready, task_name
from berth_orchestrator.store import Snapshot

TERMINAL = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
# Seconds a node whose part changes (joined as a manager, promoted, demoted) counts as heard:
# its heartbeats pause while it moves onto its new bus (a new manager's server waits up to 8 s
# to be admitted by the others' routes, then starts and catches up with the state).
MOVING_GRACE = 15.0
SECOND_NS = 1_000_000_000


@dataclass
class Plan:
    puts: list[ServiceRecord | TaskRecord] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)  # task ids
    told: list[str] = field(default_factory=list)  # what was placed or stopped, and why (logged)


class _Planner:
    def __init__(self, snap: Snapshot, now: float) -> None:
        self.snap = snap
        self.now = now
        self.stamp = rfc3339nano()
        self.plan = Plan()
        self.live_on_node: dict[str, int] = defaultdict(int)
        self.generic_wanted: dict[str, list[tuple[str, int]] | None] = {}  # by service, this cycle
        for task in snap.tasks.values():
            if task.desired_state == "running" and task.node_id:
                self.live_on_node[task.node_id] += 1

    # --- placement --------------------------------------------------------------------------
    def eligible(self, svc: ServiceRecord) -> list[NodeRecord]:
        template = specdoc.template_of(svc.spec)
        return [n for n in self.snap.nodes.values() if placement.node_failure(n, template, self.now) is None]

    def ports_taken(self, node_id: str) -> set[tuple[int, str]]:
        """Host-mode ports held on a node: by its tasks that run or have not ended yet."""
        taken: set[tuple[int, str]] = set()
        for task in self.snap.tasks.values():
            svc = self.snap.services.get(task.service_id)
            if task.node_id != node_id or svc is None:
                continue
            if task.desired_state == "running" or task.state not in TERMINAL:
                taken |= {(p.published, p.protocol) for p in specs.host_ports(svc.spec) if p.published}
        return taken

    def of_service(self, svc: ServiceRecord) -> dict[str, int]:
        """The service's live tasks on each node."""
        counts: dict[str, int] = defaultdict(int)
        for task in self.snap.tasks.values():
            if task.service_id == svc.id and task.desired_state == "running":
                counts[task.node_id] += 1
        return counts

    def generic_claim(self, svc: ServiceRecord, node: NodeRecord) -> list[str] | None:
        """The node's generic resources the service's task would hold there (None: not enough
        left beside its live tasks')."""
        if svc.id not in self.generic_wanted:
            self.generic_wanted[svc.id] = taskspec.generic_counts(specdoc.template_of(svc.spec))
        wanted = self.generic_wanted[svc.id]
        if wanted is None:
            return None
        if not wanted:
            return []
        taken = [term for t in self.snap.tasks.values() if t.node_id == node.id and t.desired_state == "running"
                 for term in t.assigned_generic]  # fmt: skip
        return placement.claim(node.generic_resources, taken, wanted)

    def service_failure(self, svc: ServiceRecord, node: NodeRecord, of_service: dict[str, int]) -> str | None:
        """The filters that depend on the tasks placed so far: the node's generic resources
        left, swarmkit's one task per published host port and node, and the service's
        replicas per node."""
        if self.generic_claim(svc, node) is None:
            return "resources"
        wanted = {(p.published, p.protocol) for p in specs.host_ports(svc.spec) if p.published}
        if wanted and wanted & self.ports_taken(node.id):
            return "host port"
        limit = specs.max_replicas(specdoc.template_of(svc.spec))
        return "max replicas" if limit and of_service[node.id] >= limit else None

    def unplaced(self, svc: ServiceRecord, node: NodeRecord | None = None) -> str:
        """Why no node takes the service's task (or why its own node does not: a global
        service's), in swarmkit's words."""
        template, of_service = specdoc.template_of(svc.spec), self.of_service(svc)
        failed = (
            placement.node_failure(n, template, self.now) or self.service_failure(svc, n, of_service)
            for n in (self.snap.nodes.values() if node is None else [node])
        )  # fmt: skip
        return placement.explain(Counter(f for f in failed if f is not None), on_its_node=node is not None)

    def pick(self, svc: ServiceRecord, nodes: list[NodeRecord]) -> NodeRecord | None:
        of_service = self.of_service(svc)
        nodes = [n for n in nodes if self.service_failure(svc, n, of_service) is None]
        if not nodes:
            return None
        template = specdoc.template_of(svc.spec)
        # Spread preferences: the label value (then, nested, the next label's) with the fewest
        # of the service's tasks first, over the nodes this service could run on.
        spread = specs.spread_over(template)
        in_branch: dict[tuple[str, ...], int] = defaultdict(int)
        for node_id, count in of_service.items():
            if (known := self.snap.nodes.get(node_id)) is not None:
                for depth in range(1, len(spread) + 1):
                    in_branch[placement.spread_branch(known, spread[:depth])] += count

        def load(n: NodeRecord) -> tuple[int, ...]:
            branches = tuple(in_branch[placement.spread_branch(n, spread[:depth])] for depth in range(1, len(spread) + 1))
            return (*branches, of_service[n.id], self.live_on_node[n.id])

        return min(nodes, key=lambda n: (load(n), n.id))

    # --- changes ----------------------------------------------------------------------------
    def put(self, record: ServiceRecord | TaskRecord) -> None:
        self.plan.puts.append(record)

    def where(self, node_id: str) -> str:
        node = self.snap.nodes.get(node_id)
        return f"{node_id} ({node.berth_node})" if node else node_id or "no node"

    def shut_down(self, task: TaskRecord, why: str) -> None:
        if task.desired_state != "shutdown":
            svc = self.snap.services.get(task.service_id)
            name = task_name(svc, task) if svc else f"{task.slot or task.node_id}.{task.id}"
            self.plan.told.append(f"task {name} on {self.where(task.node_id)} shut down: {why}")
            task.desired_state = "shutdown"
            task.updated_at = self.stamp
            if task.node_id:
                self.live_on_node[task.node_id] -= 1
            self.put(task)

    def complete(self, task: TaskRecord) -> None:
        task.desired_state = "complete"
        task.updated_at = self.stamp
        if task.node_id:
            self.live_on_node[task.node_id] -= 1
        self.put(task)

    def place(self, svc: ServiceRecord, slot: int, node: NodeRecord | None, nodes: list[NodeRecord], why: str) -> TaskRecord:
        """A new task for the slot: on the node the scheduler picks from nodes or, when it is
        made for a node (a global service's), on that node, pending there until it fits, as
        swarmkit's taskFitNode."""
        if node is None:
            return self.new_task(svc, slot, self.pick(svc, nodes), why)
        return self.new_task(svc, slot, node, why, fits=self.service_failure(svc, node, self.of_service(svc)) is None)

    def new_task(self, svc: ServiceRecord, slot: int, node: NodeRecord | None, why: str, fits: bool = True) -> TaskRecord:
        assigned = node is not None and fits
        task = TaskRecord(
            id=new_id(),
            service_id=svc.id,
            slot=slot,
            node_id=node.id if node else "",
            created_at=self.stamp,
            updated_at=self.stamp,
            spec_serial=svc.spec_serial,
            template=specdoc.template_of(svc.spec),
            state="assigned" if assigned else "pending",
            timestamp=self.stamp,
            message="assigned" if assigned else "pending task scheduling",
            err="" if assigned else self.unplaced(svc, node),
            state_since=self.now,
        )
        if node:
            self.live_on_node[node.id] += 1
        if node and assigned:
            task.assigned_generic = self.generic_claim(svc, node) or []
        self.plan.told.append(f"task {task_name(svc, task)} for {self.where(task.node_id)}: {why}")
        self.snap.tasks[task.id] = task
        self.put(task)
        return task

    def place_pending(self, task: TaskRecord, svc: ServiceRecord, nodes: list[NodeRecord], its_node: NodeRecord | None) -> None:
        node = self.pick(svc, nodes if its_node is None else [its_node])
        if node is None:
            if (why := self.unplaced(svc, its_node)) != task.err:  # as swarmkit's scheduler words it again
                task.err, task.updated_at = why, self.stamp
                self.put(task)
            return
        if task.node_id != node.id:
            self.live_on_node[node.id] += 1
        task.node_id, task.state, task.message, task.err = node.id, "assigned", "assigned", ""
        task.assigned_generic = self.generic_claim(svc, node) or []
        task.updated_at = task.timestamp = self.stamp
        task.state_since = self.now
        self.plan.told.append(f"task {task_name(svc, task)} for {self.where(node.id)}: it was pending")
        self.put(task)

    # --- one group of tasks (a slot, or a global service's node) -------------------------------
    def restart_due(self, svc: ServiceRecord, ended: TaskRecord) -> Literal["now", "wait", "never"]:
        """What the restart policy says of a task that ended: replace it now, wait for the
        delay (it stays the slot's task meanwhile), or never (the slot stays empty)."""
        if ended.state in ("shutdown", "orphaned") and ended.desired_state == "running":
            return "now"  # stopped behind the orchestrator's back, or its node was lost
        policy = specs.restart_policy(specdoc.template_of(svc.spec))
        if policy.condition == "none" or (policy.condition == "on-failure" and ended.state == "complete"):
            return "never"
        delay_passed = self.now - ended.state_since >= policy.delay_ns / SECOND_NS
        if policy.max_attempts:
            since = self.now - policy.window_ns / SECOND_NS if policy.window_ns else 0.0
            if sum(1 for at in ended.restarts if at >= since) >= policy.max_attempts:
                return "never" if delay_passed else "wait"
        return "now" if delay_passed else "wait"

    def group(
        self, svc: ServiceRecord, slot: int, tasks: list[TaskRecord], nodes: list[NodeRecord], want: bool,
        node: NodeRecord | None = None, job: bool = False,
    ) -> TaskRecord | None:
        """Keep one live task in this group (want) or none; returns the live task to update.
        A job's task that completed is done (its desired state becomes complete)."""
        live = [t for t in tasks if t.desired_state == "running"]
        live.sort(key=lambda t: t.created_at)
        current = live[-1] if live else None
        if current is not None and current.state in ("running", *TERMINAL):
            for older in live[:-1]:  # a start-first update's old task goes once the new one runs
                self.shut_down(older, "its slot's newer task runs")
        eligible_ids = {n.id for n in nodes}
        if not want:
            if current is not None:
                self.shut_down(current, "beyond the service's replicas")
            return None
        if current is not None and current.state == "pending":
            self.place_pending(current, svc, nodes, node)
            return None
        if current is not None and current.node_id not in eligible_ids:
            known = self.snap.nodes.get(current.node_id)
            down = known is not None and not node_ready(known, self.now)
            self.shut_down(current, "its node is down" if down else "its node is drained or no longer matches")
            if down:
                current.state, current.message = "orphaned", "node is down"
            self.place(svc, slot, node, nodes, "replaces a task off its node")
            return None
        if current is not None and current.state in TERMINAL:
            if job and current.state == "complete":
                self.complete(current)
                return None
            due = self.restart_due(svc, current)
            if due == "now":
                self.shut_down(current, f"it ended ({current.state})")
                task = self.place(svc, slot, node, nodes, f"restarts a task that ended ({current.state})")
                task.restarts = [*current.restarts, self.now]
            elif due == "never":
                self.complete(current)  # the policy says no more: the slot stays empty
            return None
        if current is None:
            newest = max(tasks, key=lambda t: t.created_at, default=None)
            if newest is not None and newest.desired_state == "complete":
                return None
            stopping = [t for t in tasks if t.desired_state == "shutdown" and t.state not in TERMINAL
                        and t.node_id in eligible_ids]  # fmt: skip
            if stopping and specs.update_policy(svc.spec).order == "stop-first":
                return None  # the old task first ends (stop-first), then this slot is placed
            self.place(svc, slot, node, nodes, "the slot had no task")
            return None
        return current if current.spec_serial != svc.spec_serial else None

    # --- a service ----------------------------------------------------------------------------
    def service(self, svc: ServiceRecord, tasks: list[TaskRecord]) -> None:
        mode = specs.service_mode(svc.spec)
        nodes = self.eligible(svc)
        if mode.job:
            self.job(svc, mode, tasks, nodes)
            return
        outdated: list[TaskRecord] = []
        if mode.global_mode:
            by_node = self.off_eligible_nodes(tasks, nodes)
            for node in nodes:
                found = self.group(svc, 0, by_node.get(node.id, []), [node], True, node)
                if found is not None:
                    outdated.append(found)
        else:
            by_slot: dict[int, list[TaskRecord]] = defaultdict(list)
            for task in tasks:
                by_slot[task.slot].append(task)
            for slot in sorted(set(by_slot) | set(range(1, mode.replicas + 1))):
                found = self.group(svc, slot, by_slot.get(slot, []), nodes, slot <= mode.replicas)
                if found is not None:
                    outdated.append(found)
        self.rolling_update(svc, tasks, outdated, nodes)

    def off_eligible_nodes(self, tasks: list[TaskRecord], nodes: list[NodeRecord]) -> dict[str, list[TaskRecord]]:
        """A global service's tasks by node, those on a node no longer eligible shut down."""
        by_node: dict[str, list[TaskRecord]] = defaultdict(list)
        for task in tasks:
            by_node[task.node_id].append(task)
        for node_id, group in by_node.items():
            node = self.snap.nodes.get(node_id)
            if node is None or node not in nodes:
                for task in group:
                    if task.desired_state == "running":
                        self.shut_down(task, "its node is gone, down, drained or no longer matches")
        return by_node

    def job(self, svc: ServiceRecord, mode: specs.Mode, tasks: list[TaskRecord], nodes: list[NodeRecord]) -> None:
        """A job's tasks run to completion: a replicated job's slots 0..TotalCompletions-1 (as
        swarmkit numbers them), at most MaxConcurrent at once; a global job's once on each
        eligible node. A task that fails is restarted by the restart policy (`any` restarts
        only failures: a complete task is done). An update runs the job again, its next
        iteration (spec_serial): the last one's live tasks are shut down."""
        this = []
        for task in tasks:
            if task.spec_serial == svc.spec_serial:
                this.append(task)
            elif task.desired_state == "running":
                self.shut_down(task, "the job runs again")
        if mode.global_mode:
            by_node = self.off_eligible_nodes(this, nodes)
            for node in nodes:
                if node.id in by_node:
                    self.group(svc, 0, by_node[node.id], [node], True, node, job=True)
                else:
                    self.place(svc, 0, node, nodes, "a global job runs once on each node")
            return
        by_slot: dict[int, list[TaskRecord]] = defaultdict(list)
        for task in this:
            by_slot[task.slot].append(task)
        for slot, group in by_slot.items():
            if any(t.desired_state == "running" for t in group):
                self.group(svc, slot, group, nodes, True, job=True)
        settled = {t.slot for t in this if t.desired_state == "complete"}  # done, or given up by the policy
        live = {t.slot for t in self.snap.tasks.values()
                if t.service_id == svc.id and t.spec_serial == svc.spec_serial and t.desired_state == "running"}  # fmt: skip
        room = mode.max_concurrent - len(live)
        for slot in range(mode.replicas):
            if room <= 0:
                break
            if slot not in settled and slot not in live:
                self.new_task(svc, slot, self.pick(svc, nodes), "the job has completions to go")
                room -= 1

    def rolling_update(
        self, svc: ServiceRecord, tasks: list[TaskRecord], outdated: list[TaskRecord], nodes: list[NodeRecord]
    ) -> None:
        policy = specs.update_policy(svc.spec)
        tasks = [t for t in self.snap.tasks.values() if t.service_id == svc.id]  # with the new ones
        fresh = [t for t in tasks if t.spec_serial == svc.spec_serial and t.desired_state == "running"]
        failed = next((t for t in tasks if t.spec_serial == svc.spec_serial and t.state in ("failed", "rejected")), None)
        if svc.update_state == "updating" and failed is not None:
            if policy.failure_action == "pause":
                svc.update_state = "paused"
                svc.update_message = f"update paused due to failure or early termination of task {failed.id}"
                self.put(svc)
                return
            if policy.failure_action == "rollback" and svc.previous_spec is not None:
                svc.spec, svc.previous_spec = svc.previous_spec, svc.spec
                svc.spec_serial += 1
                svc.update_state = "rollback_started"
                svc.update_message = f"update rolled back due to failure or early termination of task {failed.id}"
                svc.updated_at = self.stamp
                self.put(svc)
                return
        if svc.update_state == "paused":
            return
        if not outdated:
            # Done once every slot runs a new task: not while a slot stopped first waits for its
            # new one (or that one's healthcheck), so a failure then still takes the action.
            mode = specs.service_mode(svc.spec)
            placed = len(fresh) >= (1 if mode.global_mode else mode.replicas)
            ending = any(t.desired_state != "running" and t.state not in TERMINAL for t in tasks)
            if svc.update_state in ("updating", "rollback_started") and placed and not ending and all(
                t.state == "running" for t in fresh
            ):
                svc.update_state = "completed" if svc.update_state == "updating" else "rollback_completed"
                svc.update_completed_at = self.stamp
                svc.update_message = (
                    "update completed" if svc.update_state == "completed" else "rollback completed"
                )
                self.put(svc)
            return
        # The batch before has to be done first: its old tasks ended, its new ones running (and
        # the delay between batches passed).
        if any(t.state not in ("running", *TERMINAL) for t in fresh):
            return
        if any(t.desired_state == "shutdown" and t.state not in TERMINAL for t in tasks):
            return
        last_start = max((t.state_since for t in fresh), default=0.0)
        if fresh and self.now - last_start < policy.delay_ns / SECOND_NS:
            return
        batch = outdated if policy.parallelism == 0 else outdated[: policy.parallelism]
        for old in batch:
            if policy.order == "start-first":  # the new task first; group() stops the old one
                node = self.snap.nodes.get(old.node_id) if not old.slot else None
                self.place(svc, old.slot, node, nodes, "a rolling update")
            else:  # stop-first: group() places the slot again once the old task has ended
                self.shut_down(old, "a rolling update")

    def _job_record(self, task: TaskRecord) -> bool:
        """A task of a job's current run that is done: it is the record that its slot (or
        node) is done, kept whatever the history limit."""
        svc = self.snap.services.get(task.service_id)
        return (
            svc is not None and task.desired_state == "complete" and task.spec_serial == svc.spec_serial
            and specs.service_mode(svc.spec).job
        )  # fmt: skip

    def retention(self, limit: int, groups: Iterable[list[TaskRecord]]) -> None:
        for group in groups:
            old = [t for t in group if t.desired_state != "running" and t.state in TERMINAL and not self._job_record(t)]
            old.sort(key=lambda t: t.created_at)
            for task in old[: max(0, len(old) - limit)]:
                self.plan.deletes.append(task.id)


def plan(snap: Snapshot, now: float) -> Plan:
    planner = _Planner(snap, now)
    by_service: dict[str, list[TaskRecord]] = defaultdict(list)
    for task in snap.tasks.values():
        if task.service_id in snap.services:
            by_service[task.service_id].append(task)
        else:
            planner.plan.deletes.append(task.id)  # its service was removed
    for svc in snap.services.values():
        planner.service(svc, by_service.get(svc.id, []))
    limit = 5
    if snap.cluster is not None:
        limit = int((snap.cluster.spec.get("Orchestration") or {}).get("TaskHistoryRetentionLimit", 5) or 0)
    groups: dict[tuple[str, int, str], list[TaskRecord]] = defaultdict(list)
    for task in snap.tasks.values():
        groups[(task.service_id, task.slot, task.node_id if not task.slot else "")].append(task)
    planner.retention(limit, groups.values())
    return planner.plan
