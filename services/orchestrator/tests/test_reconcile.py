"""reconcile.plan on snapshots built by hand: placement, restarts, scaling, rolling updates."""

from __future__ import annotations

import copy
from typing import Any

from berth_orchestrator import reconcile
from berth_orchestrator.records import ClusterRecord, NodeRecord, ServiceRecord, TaskRecord
from berth_orchestrator.store import Snapshot

NOW = 1_000_000.0


def _spec(replicas: int | None = 2, **template: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "Name": "web",
        "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}, **template},
        "Mode": {"Replicated": {"Replicas": replicas}} if replicas is not None else {"Global": {}},
    }
    return spec


def _snap(spec: dict[str, Any], nodes: int = 1) -> Snapshot:
    snap = Snapshot()
    snap.cluster = ClusterRecord(id="c", created_at="", updated_at="", spec={"Orchestration": {"TaskHistoryRetentionLimit": 2}},
                                 ca_digest="d", worker_secret="w", manager_secret="m")  # fmt: skip
    for i in range(nodes):
        snap.nodes[f"n{i}"] = NodeRecord(id=f"n{i}", berth_node=f"b{i}", hostname=f"h{i}", created_at="",
                                          updated_at="", last_seen=NOW)  # fmt: skip
    snap.services["s"] = ServiceRecord(id="s", created_at="", updated_at="", spec=spec)
    return snap


def _apply(snap: Snapshot, now: float = NOW) -> reconcile.Plan:
    for node in snap.nodes.values():
        if node.last_seen >= NOW:  # alive: it beat just now (a test sets an older time for a lost node)
            node.last_seen = now
    plan = reconcile.plan(snap, now)
    for task_id in plan.deletes:
        snap.tasks.pop(task_id, None)
    for record in plan.puts:
        if isinstance(record, TaskRecord):
            snap.tasks[record.id] = record
        else:
            snap.services[record.id] = record
    return plan


def _live(snap: Snapshot) -> list[TaskRecord]:
    return sorted((t for t in snap.tasks.values() if t.desired_state == "running"), key=lambda t: (t.slot, t.node_id))


def _report(snap: Snapshot, state: str, since: float = NOW, tasks: list[TaskRecord] | None = None) -> None:
    for task in tasks if tasks is not None else _live(snap):
        task.state = state  # type: ignore[assignment]
        task.state_since = since


def test_replicas_get_one_task_per_slot_spread_over_nodes() -> None:
    snap = _snap(_spec(4), nodes=2)
    _apply(snap)
    live = _live(snap)
    assert [t.slot for t in live] == [1, 2, 3, 4]
    assert sorted(t.node_id for t in live) == ["n0", "n0", "n1", "n1"]
    assert {t.state for t in live} == {"assigned"}
    assert not _apply(snap).puts  # nothing more to do


def test_scale_down_shuts_the_highest_slots_and_scale_up_refills() -> None:
    snap = _snap(_spec(3))
    _apply(snap)
    _report(snap, "running")
    snap.services["s"].spec["Mode"]["Replicated"]["Replicas"] = 1
    _apply(snap)
    assert [t.slot for t in _live(snap)] == [1]
    stopping = [t for t in snap.tasks.values() if t.desired_state == "shutdown"]
    assert sorted(t.slot for t in stopping) == [2, 3]
    snap.services["s"].spec["Mode"]["Replicated"]["Replicas"] = 2
    _apply(snap)  # slot 2's old task has not ended yet (stop-first): wait
    assert [t.slot for t in _live(snap)] == [1]
    _report(snap, "shutdown", tasks=stopping)
    _apply(snap)
    assert [t.slot for t in _live(snap)] == [1, 2]


def test_a_failed_task_is_replaced_after_the_restart_delay() -> None:
    snap = _snap(_spec(1, RestartPolicy={"Condition": "any", "Delay": 2_000_000_000}))
    _apply(snap)
    [first] = _live(snap)
    _report(snap, "failed", since=NOW)
    _apply(snap, NOW + 1)  # within the delay: the failed task stays the slot's task
    assert _live(snap) == [first]
    _apply(snap, NOW + 2.5)
    [second] = _live(snap)
    assert second.id != first.id and second.slot == 1
    assert snap.tasks[first.id].desired_state == "shutdown"


def test_restart_conditions_and_attempts() -> None:
    none = _snap(_spec(1, RestartPolicy={"Condition": "none"}))
    _apply(none)
    _report(none, "failed")
    _apply(none, NOW + 10)
    _apply(none, NOW + 20)
    assert _live(none) == [] and len(none.tasks) == 1  # never replaced

    on_failure = _snap(_spec(1, RestartPolicy={"Condition": "on-failure", "Delay": 0}))
    _apply(on_failure)
    _report(on_failure, "complete")
    _apply(on_failure, NOW + 1)
    assert _live(on_failure) == []  # exit 0: done

    limited = _snap(_spec(1, RestartPolicy={"Condition": "any", "Delay": 0, "MaxAttempts": 2}))
    _apply(limited)
    for i in range(5):
        _report(limited, "failed", since=NOW + i)
        _apply(limited, NOW + i + 0.5)
    assert _live(limited) == []
    last = max(limited.tasks.values(), key=lambda t: t.created_at)
    assert len(last.restarts) == 2 and last.desired_state == "complete"  # two restarts, no third


def test_stop_first_update_replaces_one_slot_at_a_time() -> None:
    snap = _snap(_spec(2))
    _apply(snap)
    _report(snap, "running")
    svc = snap.services["s"]
    svc.spec = copy.deepcopy(svc.spec)
    svc.spec["TaskTemplate"]["ContainerSpec"]["Env"] = ["A=1"]
    svc.spec_serial, svc.update_state = 2, "updating"
    _apply(snap)
    old = [t for t in snap.tasks.values() if t.desired_state == "shutdown"]
    assert len(old) == 1  # parallelism 1
    _apply(snap)
    assert len([t for t in snap.tasks.values() if t.desired_state == "shutdown"]) == 1  # waits for it to end
    _report(snap, "shutdown", tasks=old)
    _apply(snap)
    fresh = [t for t in _live(snap) if t.spec_serial == 2]
    assert len(fresh) == 1 and fresh[0].template["ContainerSpec"]["Env"] == ["A=1"]
    _report(snap, "running", tasks=fresh)
    _apply(snap)  # the second slot now
    second_old = [t for t in snap.tasks.values() if t.desired_state == "shutdown" and t.state == "running"]
    assert len(second_old) == 1
    _report(snap, "shutdown", tasks=second_old)
    _apply(snap)
    _report(snap, "running", tasks=[t for t in _live(snap) if t.state == "assigned"])
    _apply(snap)
    assert {t.spec_serial for t in _live(snap)} == {2}
    assert snap.services["s"].update_state == "completed"


def test_start_first_update_stops_the_old_task_once_the_new_one_runs() -> None:
    snap = _snap(_spec(1))
    snap.services["s"].spec["UpdateConfig"] = {"Order": "start-first"}
    _apply(snap)
    _report(snap, "running")
    [old] = _live(snap)
    snap.services["s"].spec_serial = 2
    _apply(snap)
    assert len(_live(snap)) == 2 and old.desired_state == "running"
    new = next(t for t in _live(snap) if t.id != old.id)
    _report(snap, "running", tasks=[new])
    _apply(snap)
    assert _live(snap) == [new] and old.desired_state == "shutdown"


def test_failed_update_pauses() -> None:
    snap = _snap(_spec(1))
    _apply(snap)
    _report(snap, "running")
    svc = snap.services["s"]
    svc.spec_serial, svc.update_state = 2, "updating"
    _apply(snap)
    _report(snap, "shutdown", tasks=[t for t in snap.tasks.values() if t.desired_state == "shutdown"])
    _apply(snap)
    _report(snap, "failed", tasks=_live(snap))
    _apply(snap)
    assert svc.update_state == "paused" and "update paused due to failure" in svc.update_message


def test_a_stop_first_update_is_not_complete_until_its_new_task_runs() -> None:
    """One replica, stop-first: between the old task's end and the new one's start (or health)
    the update is still under way, so a failure of the new task takes the failure action."""
    snap = _snap(_spec(1))
    snap.services["s"].spec["UpdateConfig"] = {"FailureAction": "rollback"}
    _apply(snap)
    _report(snap, "running")
    svc = snap.services["s"]
    svc.previous_spec = copy.deepcopy(svc.spec)
    svc.spec_serial, svc.update_state = 2, "updating"
    _apply(snap)
    _apply(snap)  # the old task is stopping: no new one yet
    assert svc.update_state == "updating"
    _report(snap, "shutdown", tasks=[t for t in snap.tasks.values() if t.desired_state == "shutdown"])
    _apply(snap)
    assert svc.update_state == "updating"
    [new] = _live(snap)
    _report(snap, "starting", tasks=[new])  # its healthcheck has not passed yet
    _apply(snap)
    assert svc.update_state == "updating"
    _report(snap, "failed", tasks=[new])
    _apply(snap)
    assert svc.update_state == "rollback_started"


def test_global_service_runs_one_task_per_active_node() -> None:
    snap = _snap(_spec(None), nodes=3)
    snap.nodes["n2"].availability = "drain"
    _apply(snap)
    assert sorted(t.node_id for t in _live(snap)) == ["n0", "n1"]
    assert {t.slot for t in _live(snap)} == {0}
    snap.nodes["n1"].availability = "drain"
    _apply(snap)
    assert [t.node_id for t in _live(snap)] == ["n0"]


def test_constraints_and_a_lost_node() -> None:
    snap = _snap(_spec(2, Placement={"Constraints": ["node.labels.zone==a"]}), nodes=2)
    snap.nodes["n1"].labels = {"zone": "a"}
    _apply(snap)
    assert {t.node_id for t in _live(snap)} == {"n1"}
    snap.nodes["n1"].last_seen = NOW - 60  # down: its tasks are orphaned, nothing else matches
    _apply(snap)
    assert {t.state for t in _live(snap)} == {"pending"}
    assert {t.err for t in _live(snap)} == {  # swarmkit's words: most failures first, then its filters' order
        "no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 1 node)"
    }
    assert {t.state for t in snap.tasks.values() if t.desired_state == "shutdown"} == {"orphaned"}
    snap.nodes["n0"].labels = {"zone": "a"}
    _apply(snap)
    assert {(t.node_id, t.state) for t in _live(snap)} == {("n0", "assigned")}


def test_engine_labels_constrain_as_node_labels_do() -> None:
    snap = _snap(_spec(2, Placement={"Constraints": ["engine.labels.disk==ssd", "engine.labels.gpu!=yes"]}), nodes=3)
    snap.nodes["n0"].engine_labels = {"disk": "ssd", "gpu": "yes"}
    snap.nodes["n1"].engine_labels = {"disk": "SSD"}  # swarmkit compares without case
    snap.nodes["n2"].labels = {"disk": "ssd"}  # a node label is not an engine label
    _apply(snap)
    assert {t.node_id for t in _live(snap)} == {"n1"}


def test_placement_platforms_must_include_this_machine() -> None:
    import platform

    from berth_common.platforms import parse_platform

    _, here, _ = parse_platform(f"linux/{platform.machine()}")
    other = "s390x" if here != "s390x" else "ppc64le"
    fits = _snap(_spec(1, Placement={"Platforms": [{"OS": "linux", "Architecture": other},
                                                   {"OS": "linux", "Architecture": here}]}))  # fmt: skip
    _apply(fits)
    assert [t.state for t in _live(fits)] == ["assigned"]
    foreign = _snap(_spec(1, Placement={"Platforms": [{"OS": "linux", "Architecture": other}]}))
    _apply(foreign)
    assert [(t.state, t.err) for t in _live(foreign)] == [("pending", "no suitable node (unsupported platform on 1 node)")]


def test_a_host_mode_port_holds_one_task_per_node() -> None:
    spec = _spec(3)
    spec["EndpointSpec"] = {"Ports": [{"TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]}
    snap = _snap(spec, nodes=2)
    _apply(snap)
    placed = sorted((t.node_id, t.state, t.err) for t in _live(snap))
    assert placed[0] == ("", "pending", "no suitable node (host-mode port already in use on 2 nodes)")
    assert placed[1:] == [("n0", "assigned", ""), ("n1", "assigned", "")]
    spec["EndpointSpec"] = {"Ports": [{"TargetPort": 80, "PublishMode": "host"}]}  # ephemeral: no limit
    snap = _snap(spec, nodes=1)
    _apply(snap)
    assert {t.state for t in _live(snap)} == {"assigned"}


def test_generic_resources_are_claimed_from_what_each_node_offers() -> None:
    """`--generic-resource gpu=1` against `berth up --node-generic-resource`s: named units are
    given one by one, counts are taken from; a task finds no node once they are all held."""
    gpu = [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}}]
    snap = _snap(_spec(4, Resources={"Reservations": {"GenericResources": gpu}}), nodes=3)
    snap.nodes["n0"].generic_resources = ["gpu=UUID-A", "gpu=UUID-B"]
    snap.nodes["n1"].generic_resources = ["gpu=1"]
    _apply(snap)
    placed = sorted((t.node_id, tuple(t.assigned_generic), t.err) for t in _live(snap))
    assert placed == [("", (), "no suitable node (insufficient resources on 3 nodes)"),
                      ("n0", ("gpu=UUID-A",), ""), ("n0", ("gpu=UUID-B",), ""), ("n1", ("gpu=1",), "")]  # fmt: skip
    from berth_orchestrator.placement import generic_docs, resource_env

    assert resource_env(["gpu=UUID-A", "gpu=UUID-B", "fpga=2"]) == ["DOCKER_RESOURCE_FPGA=2", "DOCKER_RESOURCE_GPU=UUID-A,UUID-B"]
    assert generic_docs(["gpu=UUID-A", "fpga=2"]) == [{"NamedResourceSpec": {"Kind": "gpu", "Value": "UUID-A"}},
                                                      {"DiscreteResourceSpec": {"Kind": "fpga", "Value": 2}}]  # fmt: skip
    named = _snap(_spec(1, Resources={"Reservations": {"GenericResources": [
        {"NamedResourceSpec": {"Kind": "gpu", "Value": "UUID-A"}}]}}))  # fmt: skip
    named.nodes["n0"].generic_resources = ["gpu=UUID-A"]
    _apply(named)  # stored, as dockerd stores it; swarmkit's scheduler places counts only
    assert [(t.state, t.err) for t in _live(named)] == [("pending", "no suitable node (insufficient resources on 1 node)")]
    held = next(t for t in _live(snap) if t.assigned_generic == ["gpu=UUID-A"])
    held.desired_state = "shutdown"  # its unit is free again: the pending task takes it
    _apply(snap)
    assert sorted(t.assigned_generic for t in _live(snap) if t.node_id == "n0") == [["gpu=UUID-A"], ["gpu=UUID-B"]]


def test_a_global_services_task_waits_on_its_node_for_generic_resources() -> None:
    """swarmkit's taskFitNode: a global task is made for its node and stays pending there,
    with the filter's words alone, until the node has the units."""
    gpu = [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}}]
    snap = _snap(_spec(None, Resources={"Reservations": {"GenericResources": gpu}}), nodes=2)
    snap.nodes["n0"].generic_resources = ["gpu=UUID-A"]
    _apply(snap)
    placed = sorted((t.node_id, t.state, tuple(t.assigned_generic), t.err) for t in _live(snap))
    assert placed == [("n0", "assigned", ("gpu=UUID-A",), ""), ("n1", "pending", (), "insufficient resources on 1 node")]
    snap.nodes["n1"].generic_resources = ["gpu=2"]  # its engine now offers some
    _apply(snap)
    assert sorted((t.node_id, t.state, tuple(t.assigned_generic)) for t in _live(snap)) == [
        ("n0", "assigned", ("gpu=UUID-A",)), ("n1", "assigned", ("gpu=1",))]  # fmt: skip
    assert len(snap.tasks) == 2  # the pending task was placed, not replaced


def test_max_replicas_per_node_leaves_the_rest_pending() -> None:
    snap = _snap(_spec(5, Placement={"MaxReplicas": 2}), nodes=2)
    _apply(snap)
    placed = sorted((t.node_id, t.state) for t in _live(snap))
    assert placed == [("", "pending"), ("n0", "assigned"), ("n0", "assigned"), ("n1", "assigned"), ("n1", "assigned")]
    assert [t.err for t in _live(snap) if t.state == "pending"] == ["no suitable node (max replicas per node limit exceed)"]
    snap.nodes["n0"].availability = "drain"  # its tasks go elsewhere or wait: the words follow the cause
    _apply(snap)
    assert {t.err for t in _live(snap) if t.state == "pending"} == {
        "no suitable node (1 node not available for new tasks; max replicas per node limit exceed)"
    }
    snap.nodes["n0"].availability = "active"
    snap.nodes["n2"] = NodeRecord(id="n2", berth_node="b2", hostname="h2", created_at="", updated_at="", last_seen=NOW)
    _apply(snap)
    assert sorted(t.node_id for t in _live(snap)) == ["n0", "n0", "n1", "n1", "n2"]


def test_spread_preferences_even_out_label_values_then_nodes() -> None:
    """Three nodes in zone a, one in zone b, one without a zone: each zone value (and "none")
    gets a third of the tasks, as swarmkit's spread; within a zone, the nodes share them."""
    spread = [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]
    snap = _snap(_spec(6, Placement={"Preferences": spread}), nodes=5)
    for i, zone in enumerate(("a", "a", "a", "b")):
        snap.nodes[f"n{i}"].labels = {"zone": zone}
    _apply(snap)
    on = [t.node_id for t in _live(snap)]
    zone_of = {f"n{i}": z for i, z in enumerate(("a", "a", "a", "b", ""))}
    assert sorted(zone_of[n] for n in on) == ["", "", "a", "a", "b", "b"]
    assert len({n for n in on if zone_of[n] == "a"}) == 2  # two of zone a's nodes, one each
    nested = [*spread, {"Spread": {"SpreadDescriptor": "engine.labels.rack"}}]
    snap = _snap(_spec(4, Placement={"Preferences": nested}), nodes=3)
    for i, rack in enumerate(("r1", "r1", "r2")):
        snap.nodes[f"n{i}"].labels = {"zone": "a"}
        snap.nodes[f"n{i}"].engine_labels = {"rack": rack}
    _apply(snap)
    rack_of = {"n0": "r1", "n1": "r1", "n2": "r2"}
    assert sorted(rack_of[t.node_id] for t in _live(snap)) == ["r1", "r1", "r2", "r2"]


def _job(total: int, concurrent: int) -> dict[str, Any]:
    return {"Name": "j", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
            "Mode": {"ReplicatedJob": {"MaxConcurrent": concurrent, "TotalCompletions": total}}}  # fmt: skip


def test_a_replicated_job_runs_its_completions_max_concurrent_at_a_time() -> None:
    snap = _snap(_job(3, 2), nodes=2)
    _apply(snap)
    assert [t.slot for t in _live(snap)] == [0, 1]  # swarmkit numbers a job's slots from 0
    _report(snap, "complete", tasks=[t for t in _live(snap) if t.slot == 0])
    _report(snap, "failed", tasks=[t for t in _live(snap) if t.slot == 1])
    _apply(snap, NOW + 10)  # the failure is restarted (`any` restarts failures only); slot 2 starts
    assert sorted(t.slot for t in _live(snap)) == [1, 2]
    assert [t.desired_state for t in snap.tasks.values() if t.state == "complete"] == ["complete"]
    _report(snap, "complete")
    _apply(snap, NOW + 20)
    assert _live(snap) == [] and not _apply(snap, NOW + 30).puts  # done: nothing runs again
    # An update runs it again: the next iteration's tasks, the last one's history kept.
    done = len(snap.tasks)
    snap.services["s"].spec_serial += 1
    _apply(snap, NOW + 40)
    assert [t.slot for t in _live(snap)] == [0, 1] and len(snap.tasks) == done + 2


def test_a_job_given_up_by_its_restart_policy_is_not_run_again() -> None:
    spec = _job(1, 1)
    spec["TaskTemplate"]["RestartPolicy"] = {"Condition": "none"}
    snap = _snap(spec)
    _apply(snap)
    _report(snap, "failed")
    _apply(snap, NOW + 10)
    _apply(snap, NOW + 20)
    assert _live(snap) == [] and [t.desired_state for t in snap.tasks.values()] == ["complete"]


def test_a_global_job_runs_once_on_each_node_and_on_one_that_joins() -> None:
    snap = _snap({**_job(1, 1), "Mode": {"GlobalJob": {}}}, nodes=2)
    _apply(snap)
    assert sorted(t.node_id for t in _live(snap)) == ["n0", "n1"]
    _report(snap, "complete")
    _apply(snap, NOW + 5)
    assert _live(snap) == []
    snap.nodes["n2"] = NodeRecord(id="n2", berth_node="b2", hostname="h2", created_at="", updated_at="", last_seen=NOW)
    _apply(snap, NOW + 6)
    assert [t.node_id for t in _live(snap)] == ["n2"]


def test_history_is_bounded_and_a_removed_service_loses_its_tasks() -> None:
    snap = _snap(_spec(1, RestartPolicy={"Condition": "any", "Delay": 0}))
    _apply(snap)
    for i in range(6):
        _report(snap, "failed", since=NOW + i)
        _apply(snap, NOW + i + 0.5)
    _apply(snap, NOW + 10)
    assert len(snap.tasks) <= 3  # retention 2 old tasks + the live one
    del snap.services["s"]
    plan = reconcile.plan(snap, NOW + 11)
    assert sorted(plan.deletes) == sorted(snap.tasks)


def test_the_cluster_record_never_shows_its_token_parts() -> None:
    cluster = ClusterRecord(id="c1", created_at="", updated_at="", spec={}, ca_digest="digest-part",
                            worker_secret="worker-part", manager_secret="manager-part")  # fmt: skip
    shown = repr(cluster)
    assert "c1" in shown and not any(part in shown for part in ("digest-part", "worker-part", "manager-part"))
