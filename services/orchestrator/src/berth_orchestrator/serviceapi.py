"""The Engine API's /services and /tasks (dockerd's answers and words); /swarm and /nodes are
api.py's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from berth_common.gotime import rfc3339nano
from berth_common.names import generate_unique_name
from berth_contracts import swarm as sw
from berth_contracts.base import Done
from berth_contracts.errors import Conflict, InvalidParameter

from berth_orchestrator import ids, specdoc, specs, views
from berth_orchestrator.dataapi import check_references
from berth_orchestrator.lease import Leadership
from berth_orchestrator.lookup import check_filters, labels_match, node_name, resolve, service_name
from berth_orchestrator.reconcile import TERMINAL
from berth_orchestrator.records import ServiceRecord, TaskRecord
from berth_orchestrator.store import Snapshot, SwarmStore


class ServiceApi:
    def __init__(
        self,
        store: SwarmStore,
        leadership: Leadership,
        managed: Callable[[], Awaitable[Snapshot]],
        leader_node: Callable[[Snapshot], str],
    ) -> None:
        self.store = store
        self.leadership = leadership
        self._managed = managed  # the state, on a manager; dockerd's words elsewhere
        self._leader_node = leader_node  # `node=self` in filters: the node this manager runs on

    # --- /services ---------------------------------------------------------------------------
    async def service_create(self, cmd: sw.ServiceCreate) -> sw.ServiceCreated:
        snap = await self._managed()
        spec = specs.check_service_spec(dict(cmd.spec))
        check_references(snap, specdoc.template_of(spec))
        names = {service_name(s) for s in snap.services.values()}
        if not spec.get("Name"):
            spec["Name"] = generate_unique_name(lambda n: n in names)
        if spec["Name"] in names:
            raise Conflict(
                f"rpc error: code = AlreadyExists desc = name conflicts with an existing object: "
                f"service {spec['Name']} already exists"
            )
        stamp = rfc3339nano()
        spec = specs.with_registry_auth(spec, cmd.registry_auth)
        svc = ServiceRecord(id=ids.new_id(), created_at=stamp, updated_at=stamp, spec=spec)
        if specs.service_mode(spec).job:
            svc.job_executed_at = stamp
        await self.store.put(snap, svc)
        self.leadership.poke()
        return sw.ServiceCreated(id=svc.id)

    def _counts(self, snap: Snapshot, svc: ServiceRecord) -> dict[str, int]:
        tasks = [t for t in snap.tasks.values() if t.service_id == svc.id]
        mode = specs.service_mode(svc.spec)
        if mode.job:  # this iteration's tasks only; a replicated job wants what is left, at most MaxConcurrent
            tasks = [t for t in tasks if t.spec_serial == svc.spec_serial]
        completed = sum(1 for t in tasks if t.state == "complete")
        if mode.global_mode:
            desired = sum(1 for t in tasks if t.desired_state == "running")
        elif mode.job:
            desired = max(0, min(mode.max_concurrent, mode.replicas - completed))
        else:
            desired = mode.replicas
        return {
            "running": sum(1 for t in tasks if t.state == "running" and t.desired_state == "running"),
            "desired": desired,
            "completed": completed,
        }

    async def service_list(self, cmd: sw.ServiceList) -> sw.DockerObjects:
        snap = await self._managed()
        f = cmd.filters
        check_filters(f, {"id", "label", "mode", "name"})
        out = []
        for svc in sorted(snap.services.values(), key=lambda s: s.created_at):
            if f.get("id") and not any(svc.id.startswith(v) for v in f["id"]):
                continue
            if f.get("name") and not any(service_name(svc).startswith(v) for v in f["name"]):
                continue
            if f.get("label") and not labels_match(svc.spec.get("Labels") or {}, f["label"]):
                continue
            if f.get("mode"):
                mode = specs.service_mode(svc.spec).name
                if mode not in f["mode"]:
                    continue
            out.append(views.service_doc(snap, svc, self._counts(snap, svc) if cmd.status else None))
        return sw.DockerObjects(items=out)

    async def service_inspect(self, cmd: sw.ServiceInspect) -> sw.DockerObject:
        snap = await self._managed()
        svc = resolve(snap.services, cmd.ref, "service", service_name)
        doc = views.service_doc(snap, svc, None)
        if cmd.insert_defaults:
            for key in ("Spec", "PreviousSpec"):
                if key in doc:
                    doc[key] = specs.with_defaults(doc[key])
        return sw.DockerObject(item=doc)

    async def service_update(self, cmd: sw.ServiceUpdate) -> Done:
        snap = await self._managed()
        svc = resolve(snap.services, cmd.ref, "service", service_name)
        if cmd.version != snap.revision(f"service.{svc.id}"):
            raise Conflict(
                "rpc error: code = Unknown desc = update out of sequence"
            )
        if cmd.rollback == "previous":
            if svc.previous_spec is None:
                raise InvalidParameter(f"service {svc.id} does not have a previous spec")
            new_spec, previous = svc.previous_spec, svc.spec
            state = "rollback_started"
        else:
            new_spec, previous = specs.check_service_spec(dict(cmd.spec)), svc.spec
            check_references(snap, specdoc.template_of(new_spec))
            # dockerd: credentials sent replace the service's; none keeps those of the spec
            # or of the previous spec (`registryAuthFrom`).
            kept = svc.spec if cmd.registry_auth_from == "spec" else (svc.previous_spec or {})
            auth = cmd.registry_auth or specs.registry_auth_of(specdoc.template_of(kept))
            new_spec = specs.with_registry_auth(new_spec, auth)
            state = "updating"
        if (new_spec.get("Name") or service_name(svc)) != service_name(svc):
            raise InvalidParameter("renaming services is not supported")
        new_spec["Name"] = service_name(svc)
        stamp = rfc3339nano()
        old_mode, new_mode = specs.service_mode(svc.spec), specs.service_mode(new_spec)
        if (old_mode.job, old_mode.global_mode) != (new_mode.job, new_mode.global_mode):
            raise InvalidParameter("rpc error: code = InvalidArgument desc = service mode change is not allowed")
        if new_mode.job:  # any update runs a job again: its next iteration (swarmkit's JobIteration)
            svc.spec_serial += 1
            svc.job_executed_at = stamp
        elif not specs.same_template(specdoc.template_of(new_spec), specdoc.template_of(svc.spec)):
            svc.spec_serial += 1
            svc.update_state, svc.update_started_at, svc.update_completed_at = state, stamp, ""
            svc.update_message = "update in progress" if state == "updating" else "manually requested rollback"
        svc.previous_spec, svc.spec, svc.updated_at = previous, new_spec, stamp
        await self.store.put(snap, svc)
        self.leadership.poke()
        return Done()

    async def service_remove(self, cmd: sw.ServiceRemove) -> Done:
        snap = await self._managed()
        svc = resolve(snap.services, cmd.ref, "service", service_name)
        await self.store.delete(snap, f"service.{svc.id}")
        self.leadership.poke()
        return Done()

    # --- /tasks ------------------------------------------------------------------------------
    async def task_list(self, cmd: sw.TaskList) -> sw.DockerObjects:
        snap = await self._managed()
        f = cmd.filters
        check_filters(f, {"desired-state", "id", "label", "name", "node", "service", "_up-to-date"})
        services = set()
        for ref in f.get("service", []):
            services.add(resolve(snap.services, ref, "service", service_name).id)
        nodes = set()
        for ref in f.get("node", []):
            nodes.add(self._leader_node(snap) if ref == "self" else resolve(snap.nodes, ref, "node", node_name).id)
        out = []
        for task in sorted(snap.tasks.values(), key=lambda t: (t.service_id, t.slot, t.created_at)):
            svc = snap.services.get(task.service_id)
            if svc is None:
                continue
            if services and task.service_id not in services:
                continue
            if nodes and task.node_id not in nodes:
                continue
            if f.get("id") and not any(task.id.startswith(v) for v in f["id"]):
                continue
            if f.get("desired-state") and not _desired_matches(task, f["desired-state"]):
                continue
            if f.get("name"):
                name = f"{service_name(svc)}.{task.slot or task.node_id}"
                if not any(name.startswith(v) for v in f["name"]):
                    continue
            if f.get("_up-to-date") and task.spec_serial != svc.spec_serial:
                continue
            out.append(views.task_doc(snap, task, svc))
        return sw.DockerObjects(items=out)

    async def task_inspect(self, cmd: sw.TaskInspect) -> sw.DockerObject:
        snap = await self._managed()
        task = resolve(snap.tasks, cmd.ref, "task", lambda t: "")
        return sw.DockerObject(item=views.task_doc(snap, task, snap.services.get(task.service_id)))


def _desired_matches(task: TaskRecord, wanted: list[str]) -> bool:
    for state in wanted:
        if state not in ("running", "shutdown", "accepted"):
            raise InvalidParameter(f"Invalid task desired state: {state}")
    if task.desired_state == "complete":
        return "shutdown" in wanted
    return task.desired_state in wanted or (
        "accepted" in wanted and task.desired_state == "running" and task.state not in TERMINAL
    )
