"""The orchestrator on a real, locked nats-server with JetStream: the API with the gateway's
credentials, heartbeats with the engine's, and what the other identities cannot reach."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import msgspec
import pytest
from berth_contracts import subjects
from berth_contracts import swarm as sw
from berth_contracts import swarmnode as sn
from berth_contracts.base import Done, Ping
from berth_contracts.buspermissions import API_GATEWAY, ENGINE, LIFECYCLE, ORCHESTRATOR
from berth_contracts.codec import decode, encode
from berth_contracts.engine import ContainerLogs, ContainerRef, ContainerResolve, LogsStarted
from berth_contracts.errors import (
    Conflict,
    InvalidParameter,
    NotFound,
    NotImplementedByBerth,
    Unavailable,
)
from berth_contracts.streams import STDERR, STDOUT, LogBatch, LogLine
from berth_kit.busauth import creds_path
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcClient, RpcServer
from berth_kit.testing import authenticated_nats_server
from berth_orchestrator import logrelay
from berth_orchestrator.__main__ import register
from berth_orchestrator.api import SwarmApi
from berth_orchestrator.dispatcher import Dispatcher
from berth_orchestrator.lease import Leadership
from berth_orchestrator.records import NodeRecord
from berth_orchestrator.servicelogs import NodeLogEndpoint, NodeLogSource, ServiceLogReader
from berth_orchestrator.store import SwarmStore
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

pytestmark = pytest.mark.anyio

SPEC = {
    "Name": "web",
    "TaskTemplate": {
        "ContainerSpec": {"Image": "busybox:latest", "Args": ["sleep", "100"], "Init": False,
                          "DNSConfig": {}, "Isolation": "default"},
        "Resources": {"Limits": {}, "Reservations": {}},
        "RestartPolicy": {"Condition": "any", "MaxAttempts": 0},
        "Placement": {},
        "ForceUpdate": 0,
        "Runtime": "container",
    },
    "Mode": {"Replicated": {"Replicas": 2}},
    "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000, "Order": "stop-first"},
    "EndpointSpec": {"Mode": "vip"},
}  # fmt: skip


@dataclass
class Swarm:
    gateway: RpcClient
    engine: RpcClient
    leadership: Leadership
    bus_dir: Path
    url: str

    async def call(self, command: object, reply: type) -> object:
        return await self.gateway.request(subjects.ORCHESTRATOR_RPC, command, reply, timeout=10)  # type: ignore[arg-type]

    async def beat(self, *reports: sn.TaskReport, files_held: tuple[str, ...] = ()) -> sn.NodeAssignments:
        return await self.engine.request(
            subjects.ORCHESTRATOR_RPC,
            sn.NodeHeartbeat(node="n1", hostname="host1", tasks=list(reports), files_held=list(files_held)),
            sn.NodeAssignments,
            timeout=10,
        )


async def _as(url: str, bus_dir: Path, identity: str) -> NATS:
    return await connect(url, identity, creds_file=str(creds_path(bus_dir, identity)), connect_deadline=10)


@pytest.fixture
async def swarm() -> AsyncIterator[Swarm]:
    with authenticated_nats_server() as (url, bus_dir):
        served = await _as(url, bus_dir, ORCHESTRATOR)
        gateway = await _as(url, bus_dir, API_GATEWAY)
        engine = await _as(url, bus_dir, ENGINE)
        store = SwarmStore(served)

        async def announce() -> None:
            await served.publish(subjects.SWARM_CHANGED, b"")

        leadership = Leadership(store, "n1", announce)
        server = RpcServer(served, subjects.ORCHESTRATOR_RPC, sw.OrchestratorRequest, queue="q", node="n1")
        api = SwarmApi(store, leadership)
        try:
            async with anyio.create_task_group() as tg:
                logs = ServiceLogReader(api.managed, served, lambda: served, tg)
                register(server, api, Dispatcher(store, leadership), logs)
                source = NodeLogSource(served, RpcClient(served), tg)
                await NodeLogEndpoint(source, tg, "berth-orchestrator", "n1").serve_at(served, subjects.swarm_logs("*"))
                await server.start(tg)
                yield Swarm(RpcClient(gateway), RpcClient(engine), leadership, bus_dir, url)
                await server.stop()
                tg.cancel_scope.cancel()
        finally:
            for nc in (served, gateway, engine):
                await nc.close()


async def test_init_service_tasks_and_leave(swarm: Swarm) -> None:
    inactive = await swarm.call(sw.LocalNodeInfo(node="n1"), sw.NodeSwarmState)
    assert inactive.info["LocalNodeState"] == "inactive"  # type: ignore[attr-defined]
    with pytest.raises(Unavailable, match="not a swarm manager"):
        await swarm.call(sw.ServiceList(), sw.DockerObjects)
    assert (await swarm.beat()).in_swarm is False

    init = await swarm.call(sw.SwarmInit(node="n1", hostname="host1"), sw.SwarmInitialised)
    node_id = init.node_id  # type: ignore[attr-defined]
    with pytest.raises(Unavailable, match="already part of a swarm"):
        await swarm.call(sw.SwarmInit(node="n1", hostname="host1"), sw.SwarmInitialised)
    with pytest.raises(Unavailable, match="already part of a swarm"):
        await swarm.call(sw.SwarmJoin(node="n1", remote_addrs=["x:2377"], join_token="t"), Done)
    cluster = (await swarm.call(sw.SwarmInspect(), sw.DockerObject)).item  # type: ignore[attr-defined]
    assert cluster["JoinTokens"]["Worker"].startswith("SWMTKN-1-")
    assert cluster["JoinTokens"]["Worker"] != cluster["JoinTokens"]["Manager"]
    info = (await swarm.call(sw.LocalNodeInfo(node="n1"), sw.NodeSwarmState)).info  # type: ignore[attr-defined]
    assert (info["LocalNodeState"], info["NodeID"], info["Nodes"], info["Managers"]) == ("active", node_id, 1, 1)
    assert "JoinTokens" not in info["Cluster"]

    created = await swarm.call(sw.ServiceCreate(spec=SPEC), sw.ServiceCreated)
    service_id = created.id  # type: ignore[attr-defined]
    with pytest.raises(Conflict, match="service web already exists"):
        await swarm.call(sw.ServiceCreate(spec=SPEC), sw.ServiceCreated)
    with pytest.raises(InvalidParameter, match="ingress mode"):
        await swarm.call(sw.ServiceCreate(spec={**SPEC, "Name": "p", "EndpointSpec": {"Ports": [{"TargetPort": 80}]}}), sw.ServiceCreated)
    with pytest.raises(InvalidParameter, match="overlay networks"):
        bad = {**SPEC, "Name": "n", "TaskTemplate": {**SPEC["TaskTemplate"], "Networks": [{"Target": "x"}]}}  # type: ignore[dict-item]
        await swarm.call(sw.ServiceCreate(spec=bad), sw.ServiceCreated)

    await swarm.beat()  # the node is seen: placement needs it ready
    # Heartbeats do not change the node's Version: `docker node update` names the one it read.
    before = (await swarm.call(sw.NodeInspect(ref=node_id), sw.DockerObject)).item  # type: ignore[attr-defined]
    await anyio.sleep(2.1)
    await swarm.beat()
    after = (await swarm.call(sw.NodeInspect(ref=node_id), sw.DockerObject)).item  # type: ignore[attr-defined]
    assert after["Version"] == before["Version"] and after["Status"]["State"] == "ready"
    await swarm.leadership.cycle()
    assert swarm.leadership.is_leader
    beat = await swarm.beat()
    assert beat.in_swarm and beat.node_id == node_id
    names = sorted(a.container_name for a in beat.tasks)
    assert [n.rsplit(".", 1)[0] for n in names] == ["web.1", "web.2"]
    first = beat.tasks[0]
    assert first.args == ["sleep", "100"] and first.labels["com.docker.swarm.service.id"] == service_id
    assert first.labels["com.docker.swarm.task.id"] == first.task_id

    # Running reports show in the service's counts and the task list.
    await swarm.beat(*(sn.TaskReport(task_id=a.task_id, state="running", message="started",
                                  container_id=f"c{i}", pid=10 + i) for i, a in enumerate(beat.tasks)))  # fmt: skip
    listed = (await swarm.call(sw.ServiceList(status=True), sw.DockerObjects)).items  # type: ignore[attr-defined]
    assert listed[0]["ServiceStatus"] == {"RunningTasks": 2, "DesiredTasks": 2, "CompletedTasks": 0}
    tasks = (await swarm.call(sw.TaskList(filters={"service": ["web"]}), sw.DockerObjects)).items  # type: ignore[attr-defined]
    assert {t["Status"]["State"] for t in tasks} == {"running"}
    assert {t["Status"]["ContainerStatus"]["ContainerID"] for t in tasks} == {"c0", "c1"}

    # Scale to 1: the second slot is shut down, its container kept until history drops it.
    svc = (await swarm.call(sw.ServiceInspect(ref="web"), sw.DockerObject)).item  # type: ignore[attr-defined]
    with pytest.raises(Conflict, match="out of sequence"):
        await swarm.call(sw.ServiceUpdate(ref="web", version=1, spec=SPEC), Done)
    with pytest.raises(InvalidParameter, match="service mode change is not allowed"):
        global_ = {**SPEC, "Mode": {"Global": {}}}
        await swarm.call(sw.ServiceUpdate(ref="web", version=svc["Version"]["Index"], spec=global_), Done)
    scaled = {**SPEC, "Mode": {"Replicated": {"Replicas": 1}}}
    await swarm.call(sw.ServiceUpdate(ref=service_id[:5], version=svc["Version"]["Index"], spec=scaled), Done)
    await swarm.leadership.cycle()
    beat = await swarm.beat()
    desired = sorted((a.container_name.split(".")[1], a.desired_state) for a in beat.tasks)
    assert desired == [("1", "running"), ("2", "shutdown")]

    await swarm.call(sw.ServiceRemove(ref="web"), Done)
    with pytest.raises(NotFound, match="service web not found"):
        await swarm.call(sw.ServiceInspect(ref="web"), sw.DockerObject)
    await swarm.leadership.cycle()
    assert (await swarm.beat()).tasks == []

    with pytest.raises(Unavailable, match="Use `--force`"):
        await swarm.call(sw.SwarmLeave(node="n1"), Done)
    await swarm.call(sw.SwarmLeave(node="n1", force=True), Done)
    assert (await swarm.beat()).in_swarm is False
    with pytest.raises(Unavailable, match="not a swarm manager"):
        await swarm.call(sw.ServiceList(), sw.DockerObjects)


async def test_only_the_orchestrator_reaches_jetstream(swarm: Swarm) -> None:
    """The bucket holds the join tokens: no other identity may read it or use JetStream."""
    await swarm.call(sw.SwarmInit(node="n1", hostname="host1"), sw.SwarmInitialised)
    for identity in (API_GATEWAY, ENGINE, LIFECYCLE):
        nc = await _as(swarm.url, swarm.bus_dir, identity)
        try:
            js = nc.jetstream(timeout=2)
            with pytest.raises(Exception):  # noqa: B017 - refused by the server: a timeout or an error
                kv = await js.key_value(subjects.SWARM_BUCKET)
                await kv.get("cluster")
        finally:
            await nc.close()


def _engine_serving_logs(engine: NATS, names: dict[str, str]) -> RpcServer:
    """The engine's ContainerResolve (names: container ID -> its name) beside ContainerLogs."""

    async def resolve(cmd: ContainerResolve) -> ContainerRef:
        if cmd.ref not in names:
            raise NotFound(f"No such container: {cmd.ref}")
        return ContainerRef(id=cmd.ref, name=names[cmd.ref], status="running", tty=False, open_stdin=False,
                            stdin_once=False, auto_remove=False)  # fmt: skip

    server = RpcServer(engine, subjects.ENGINE_RPC, ContainerLogs | ContainerResolve | Ping)
    server.handle(ContainerResolve, resolve)
    return server


async def _serve_container_logs(engine: NATS, tg: anyio.abc.TaskGroup, names: dict[str, str]) -> RpcServer:
    """The engine's side of ContainerLogs, as its agent answers it: a few lines, the second
    batch a checkpoint (the relay must pass it on and wait for the gateway's answer), the end.
    Container "gone" was removed."""

    async def stream(cmd: ContainerLogs) -> None:
        first = LogLine(stream=STDOUT, data=f"{cmd.ref} one\n".encode(), time="2026-12-04T10:00:00.000000001Z")
        await engine.publish(cmd.stream_subject, encode(LogBatch(lines=[first])))
        second = LogLine(stream=STDERR, data=f"{cmd.ref} two\n".encode(), time="2026-12-04T10:00:01Z")
        await engine.request(cmd.stream_subject, encode(LogBatch(lines=[second])), timeout=5)
        await engine.publish(cmd.stream_subject, encode(LogBatch(lines=[], end=True)))

    async def logs(cmd: ContainerLogs) -> LogsStarted:
        if cmd.ref == "gone":
            raise NotFound("No such container: gone")
        tg.start_soon(stream, cmd)
        return LogsStarted(tty=False)

    server = _engine_serving_logs(engine, names)
    server.handle(ContainerLogs, logs)
    await server.start(tg)
    return server


async def _read_log(swarm: Swarm, gateway: NATS, command: sw.ServiceLogs) -> list[LogLine]:
    inbox = gateway.new_inbox()
    sub = await gateway.subscribe(inbox)
    started = await swarm.call(msgspec.structs.replace(command, stream_subject=inbox), LogsStarted)
    assert started.tty is False  # type: ignore[attr-defined]
    lines: list[LogLine] = []
    with anyio.fail_after(20):
        while True:
            msg = await sub.next_msg(timeout=20)
            batch = decode(msg.data, LogBatch)
            lines.extend(batch.lines)
            if batch.lines and msg.reply:
                await msg.respond(b"")
            if batch.end:
                assert batch.error == ""
                return lines


async def test_service_logs_pass_through_the_node_with_details(swarm: Swarm) -> None:
    """docker service logs on a swarm on one host: the manager asks the task's node (itself)
    on the swarm's bus, the node reads its engine's log, every hop with its own credentials."""
    node_id = (await swarm.call(sw.SwarmInit(node="n1", hostname="host1"), sw.SwarmInitialised)).node_id  # type: ignore[attr-defined]
    service_id = (await swarm.call(sw.ServiceCreate(spec=SPEC), sw.ServiceCreated)).id  # type: ignore[attr-defined]
    await swarm.beat()
    await swarm.leadership.cycle()
    beat = await swarm.beat()
    ids = ["c0", "gone"]
    await swarm.beat(*(sn.TaskReport(task_id=a.task_id, state="running", container_id=ids[i])
                       for i, a in enumerate(beat.tasks)))  # fmt: skip
    engine = await _as(swarm.url, swarm.bus_dir, ENGINE)
    gateway = await _as(swarm.url, swarm.bus_dir, API_GATEWAY)
    try:
        async with anyio.create_task_group() as tg:
            task_of = {ids[i]: a.task_id for i, a in enumerate(beat.tasks)}
            server = await _serve_container_logs(engine, tg, {"c0": f"web.1.{task_of['c0']}"})
            lines = await _read_log(swarm, gateway, sw.ServiceLogs(ref="web", stream_subject="x"))
            # The removed container has nothing to read; the other task's lines carry its IDs.
            assert [(line.stream, line.data) for line in lines] == [(STDOUT, b"c0 one\n"), (STDERR, b"c0 two\n")]
            task_id = next(a.task_id for i, a in enumerate(beat.tasks) if ids[i] == "c0")
            assert lines[0].attrs == {
                "com.docker.swarm.node.id": node_id,
                "com.docker.swarm.service.id": service_id,
                "com.docker.swarm.task.id": task_id,
            }
            assert list(lines[0].attrs) == sorted(lines[0].attrs)  # dockerd's order: node, service, task
            one = await _read_log(swarm, gateway, sw.ServiceLogs(ref=task_id, task=True, stream_subject="x"))
            assert [line.data for line in one] == [b"c0 one\n", b"c0 two\n"]
            with pytest.raises(NotFound, match="service nope not found"):
                await swarm.call(sw.ServiceLogs(ref="nope", stream_subject="x"), LogsStarted)
            # A node reads only a task's own container: not another by a task's name.
            manager = await _as(swarm.url, swarm.bus_dir, ORCHESTRATOR)
            other = sw.NodeLogs(task_id=task_of["gone"], container_id="c0", stream_subject="x.y", ack_prefix="x.z")
            try:
                with pytest.raises(NotFound, match="No such container: c0"):
                    await RpcClient(manager).request(
                        subjects.swarm_logs(node_id), other, LogsStarted, timeout=10, attempts=1,
                        reply_prefix=subjects.swarm_log_stream(node_id),
                    )  # fmt: skip
            finally:
                await manager.close()
            await server.stop()
            tg.cancel_scope.cancel()
    finally:
        for nc in (engine, gateway):
            await nc.close()


async def test_a_followed_service_log_is_torn_down_when_its_reader_leaves(
    swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--follow, then the client leaves: each hop sees its reader gone and leaves its own
    upstream, so the engine's side (the agent, following the container's log) stops too."""
    monkeypatch.setattr(logrelay, "PROBE_EVERY", 0.3)
    await swarm.call(sw.SwarmInit(node="n1", hostname="host1"), sw.SwarmInitialised)
    await swarm.call(sw.ServiceCreate(spec={**SPEC, "Mode": {"Replicated": {"Replicas": 1}}}), sw.ServiceCreated)
    await swarm.beat()
    await swarm.leadership.cycle()
    [task] = (await swarm.beat()).tasks
    await swarm.beat(sn.TaskReport(task_id=task.task_id, state="running", container_id="c0"))
    engine = await _as(swarm.url, swarm.bus_dir, ENGINE)
    gateway = await _as(swarm.url, swarm.bus_dir, API_GATEWAY)
    reader_gone = anyio.Event()

    async def follow(cmd: ContainerLogs) -> None:  # as the agent follows an idle log
        line = LogLine(stream=STDOUT, data=b"hello\n", time="2026-12-04T10:00:00Z")
        await engine.publish(cmd.stream_subject, encode(LogBatch(lines=[line])))
        while True:
            await anyio.sleep(0.2)
            try:
                await engine.request(cmd.stream_subject, encode(LogBatch(lines=[])), timeout=0.3)
            except NoRespondersError:
                reader_gone.set()
                return
            except NatsTimeoutError:
                pass

    try:
        async with anyio.create_task_group() as tg:

            async def logs(cmd: ContainerLogs) -> LogsStarted:
                tg.start_soon(follow, cmd)
                return LogsStarted(tty=False)

            server = _engine_serving_logs(engine, {"c0": f"web.1.{task.task_id}"})
            server.handle(ContainerLogs, logs)
            await server.start(tg)
            inbox = gateway.new_inbox()
            sub = await gateway.subscribe(inbox)
            await swarm.call(sw.ServiceLogs(ref="web", stream_subject=inbox, follow=True), LogsStarted)
            first = decode((await sub.next_msg(timeout=10)).data, LogBatch)
            assert [line.data for line in first.lines] == [b"hello\n"]
            await sub.unsubscribe()  # the client left
            with anyio.fail_after(10):
                await reader_gone.wait()
            await server.stop()
            tg.cancel_scope.cancel()
    finally:
        for nc in (engine, gateway):
            await nc.close()


async def test_a_demotion_is_checked_as_swarmkit_checks_a_raft_members_removal(swarm: Swarm) -> None:
    """Never the last manager, never below a majority of reachable managers (one of two only
    while the other is reachable: e2e test_swarm_hosts demotes it); a demoted node's record
    keeps its route until its server left JetStream's cluster, and `node rm` waits for that."""
    me = (await swarm.call(sw.SwarmInit(node="n1", hostname="host1"), sw.SwarmInitialised)).node_id  # type: ignore[attr-defined]
    store = swarm.leadership.store
    with pytest.raises(InvalidParameter, match="attempting to demote the last manager of the swarm"):
        await swarm.call(sw.NodeUpdate(ref=me, version=(await store.load()).revision(f"node.{me}"),
                                       spec={"Role": "worker"}), Done)  # fmt: skip

    async def add(node_id: str, seen: float) -> None:
        snap = await store.load()
        await store.put(snap, NodeRecord(id=node_id, berth_node=node_id, hostname=node_id, created_at="", updated_at="",
                                         role="manager", routes_at=f"10.0.0.{len(snap.nodes) + 1}:2378"))  # fmt: skip
        await store.put_seen(await store.load(), node_id, seen)

    async def demote(node_id: str) -> None:
        snap = await store.load()
        await swarm.call(sw.NodeUpdate(ref=node_id, version=snap.revision(f"node.{node_id}"), spec={"Role": "worker"}), Done)

    await swarm.beat()
    await add("m2", 0.0)
    with pytest.raises(Unavailable, match="this would result in a loss of quorum"):
        await demote(me)  # the other of two is down
    await store.put_seen(await store.load(), "m2", time.time())
    # Four managers, two of them down: demoting a live one would leave one reachable of three.
    await add("m3", 0.0)
    await add("m4", 0.0)
    with pytest.raises(Unavailable, match="this would result in a loss of quorum"):
        await demote("m2")
    # A down one goes: two reachable of three.
    await demote("m4")
    m4 = (await store.load()).nodes["m4"]
    assert (m4.role, m4.leaving_cluster, m4.routes_at) == ("worker", True, "10.0.0.4:2378")
    with pytest.raises(Unavailable, match="still leaving the managers' cluster"):
        await swarm.call(sw.NodeRemove(ref="m4"), Done)


async def test_with_registry_auth_the_credentials_reach_only_the_nodes_pull(swarm: Swarm) -> None:
    """`--with-registry-auth`: kept with the service (ContainerSpec.PullOptions, as swarmkit),
    given to the node in its task's assignment, never shown by the Engine API; an update
    without credentials keeps the spec's (or the previous spec's), one with them replaces them."""
    await swarm.call(sw.SwarmInit(node="n1", hostname="host1"), sw.SwarmInitialised)
    first, second = "eyJ1c2VybmFtZSI6ImEifQ==", "eyJ1c2VybmFtZSI6ImIifQ=="
    created = await swarm.call(sw.ServiceCreate(spec=SPEC, registry_auth=first), sw.ServiceCreated)
    service_id = created.id  # type: ignore[attr-defined]
    assert first not in repr(sw.ServiceCreate(spec=SPEC, registry_auth=first))
    await swarm.beat()  # the node is seen: placement needs it ready

    reports: list[sn.TaskReport] = []

    async def given() -> set[str]:
        """The credentials of the tasks the node is to run, once it runs all it was given (as
        an engine would report them: a rolling update goes on only then)."""
        nonlocal reports
        await swarm.leadership.cycle()  # reconciles (no lease loop runs here)
        tasks = (await swarm.beat(*reports)).tasks
        assert all(first not in repr(t) and second not in repr(t) for t in tasks)
        reports = [
            sn.TaskReport(task_id=t.task_id, state=t.desired_state, message="", container_id=f"c-{t.task_id}", pid=1)
            for t in tasks
        ]
        return {t.registry_auth for t in tasks if t.desired_state == "running"}

    async def settles_on(auth: str) -> None:
        with anyio.fail_after(30):
            while await given() != {auth}:  # noqa: ASYNC110 - polls the orchestrator, as an engine does
                await anyio.sleep(0.2)

    async def shown() -> tuple[dict[str, Any], int]:
        doc = (await swarm.call(sw.ServiceInspect(ref=service_id), sw.DockerObject)).item  # type: ignore[attr-defined]
        tasks = (await swarm.call(sw.TaskList(), sw.DockerObjects)).items  # type: ignore[attr-defined]
        for item in (doc, *tasks):
            assert "PullOptions" not in json.dumps(item) and first not in json.dumps(item)
        return doc, doc["Version"]["Index"]

    await settles_on(first)
    doc, version = await shown()
    snap = await swarm.leadership.store.load()  # records never show them either (logs, tracebacks)
    assert not any(first in repr(r) for r in (*snap.services.values(), *snap.tasks.values()))
    # No credentials sent: the spec's are kept.
    spec = {**doc["Spec"], "Labels": {"a": "1"}}
    await swarm.call(sw.ServiceUpdate(ref=service_id, version=version, spec=spec), Done)
    doc, version = await shown()
    await settles_on(first)
    # New ones replace them (and, changing the task template, roll the tasks, as swarmkit).
    await swarm.call(sw.ServiceUpdate(ref=service_id, version=version, spec=doc["Spec"], registry_auth=second), Done)
    doc, version = await shown()
    await settles_on(second)
    # registryAuthFrom=previous-spec: the previous spec's.
    await swarm.call(
        sw.ServiceUpdate(ref=service_id, version=version, spec=doc["Spec"], registry_auth_from="previous-spec"), Done
    )
    await settles_on(first)


async def test_a_copy_for_a_move_closes_the_store_until_the_move_or_its_undoing(swarm: Swarm) -> None:
    """Before a manager's state moves (into a cluster, or back to one server), the store is
    closed: a change accepted after the copy would be lost with the old bucket."""
    await swarm.call(sw.SwarmInit(node="n1", hostname="host1"), sw.SwarmInitialised)
    store = swarm.leadership.store
    entries = await store.dump(close=True)
    assert "cluster" in entries
    with pytest.raises(Unavailable):
        await store.load()
    with pytest.raises(Unavailable):
        await swarm.call(sw.ServiceCreate(spec=SPEC), sw.ServiceCreated)
    store.reopen()  # the move did not start
    assert (await store.load()).cluster is not None


async def test_secrets_and_configs_reach_only_their_tasks_node_and_a_secrets_data_is_never_shown(swarm: Swarm) -> None:
    await swarm.call(sw.SwarmInit(node="n1", hostname="host1"), sw.SwarmInitialised)
    secret_data, config_data = b"s3cr3t-value", b"key=value\n"
    created = await swarm.call(sw.DataCreate(kind="secret", spec={"Name": "db-pass", "Labels": {"a": "b"},
                                                                  "Data": base64.b64encode(secret_data).decode()}),
                               sw.DataCreated)  # fmt: skip
    secret_id = created.id  # type: ignore[attr-defined]
    config = await swarm.call(sw.DataCreate(kind="config", spec={"name": "app.conf", "data": base64.b64encode(config_data).decode()}),
                              sw.DataCreated)  # fmt: skip
    config_id = config.id  # type: ignore[attr-defined]
    with pytest.raises(Conflict, match="secret db-pass already exists"):
        await swarm.call(sw.DataCreate(kind="secret", spec={"Name": "db-pass", "Data": "eA=="}), sw.DataCreated)
    with pytest.raises(InvalidParameter, match="larger than 0 and less than 500 KiB"):
        await swarm.call(sw.DataCreate(kind="secret", spec={"Name": "empty", "Data": ""}), sw.DataCreated)
    templated = {"Name": "t", "Data": "eA==", "templating": {"name": "golang"}}  # docker-py's spelling
    await swarm.call(sw.DataCreate(kind="config", spec=templated), sw.DataCreated)
    kept = (await swarm.call(sw.DataInspect(kind="config", ref="t"), sw.DockerObject)).item  # type: ignore[attr-defined]
    assert kept["Spec"]["Templating"] == {"Name": "golang"}
    await swarm.call(sw.DataRemove(kind="config", ref="t"), Done)
    with pytest.raises(InvalidParameter, match="unrecognized template type 'jinja'"):
        await swarm.call(sw.DataCreate(kind="config", spec={**templated, "templating": {"name": "jinja"}}), sw.DataCreated)
    with pytest.raises(NotImplementedByBerth, match=r"secret drivers \(--driver\) are not supported"):
        await swarm.call(sw.DataCreate(kind="secret", spec={"Name": "d", "Data": "eA==", "Driver": {"Name": "vault"}}), sw.DataCreated)
    with pytest.raises(InvalidParameter, match="invalid name"):
        await swarm.call(sw.DataCreate(kind="secret", spec={"Name": "-x", "Data": "eA=="}), sw.DataCreated)
    shown = (await swarm.call(sw.DataInspect(kind="secret", ref="db-pass"), sw.DockerObject)).item  # type: ignore[attr-defined]
    assert shown["ID"] == secret_id and shown["Spec"] == {"Name": "db-pass", "Labels": {"a": "b"}}
    assert base64.b64encode(secret_data).decode() not in json.dumps(shown)
    listed = (await swarm.call(sw.DataList(kind="config"), sw.DockerObjects)).items  # type: ignore[attr-defined]
    assert [c["Spec"]["Data"] for c in listed] == [base64.b64encode(config_data).decode()]  # a config's is shown
    assert (await swarm.call(sw.DataList(kind="secret", filters={"names": ["nope"]}), sw.DockerObjects)).items == []  # type: ignore[attr-defined]

    refs = {"Secrets": [{"File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 0o400}, "SecretID": secret_id, "SecretName": "db-pass"}],
            "Configs": [{"File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0", "Mode": 0o444}, "ConfigID": config_id, "ConfigName": "app.conf"}]}  # fmt: skip
    spec = {**SPEC, "TaskTemplate": {**SPEC["TaskTemplate"], "ContainerSpec": {"Image": "busybox", **refs}}}  # type: ignore[dict-item]
    with pytest.raises(InvalidParameter, match="secret not found: gone"):
        missing = {"Secrets": [{"File": {"Name": "x"}, "SecretID": "nope", "SecretName": "gone"}]}
        bad = {**SPEC, "Name": "bad", "TaskTemplate": {**SPEC["TaskTemplate"], "ContainerSpec": {"Image": "b", **missing}}}  # type: ignore[dict-item]
        await swarm.call(sw.ServiceCreate(spec=bad), sw.ServiceCreated)
    await swarm.call(sw.ServiceCreate(spec=spec), sw.ServiceCreated)
    await swarm.beat()
    await swarm.leadership.cycle()
    beat = await swarm.beat()
    files = {(f.kind, f.target, f.data, f.mode) for task in beat.tasks for f in task.files}
    assert files == {("secret", "/run/secrets/db", secret_data, 0o400), ("config", "/etc/app.conf", config_data, 0o444)}
    assert "s3cr3t" not in repr(beat) and "s3cr3t" not in repr(beat.tasks[0].files)
    # A node holding the task's files is not sent their data again at every beat.
    held = await swarm.beat(files_held=tuple(task.task_id for task in beat.tasks))
    assert {(f.kind, f.target, f.data) for task in held.tasks for f in task.files} == {
        ("secret", "/run/secrets/db", None), ("config", "/etc/app.conf", None),
    }
    with pytest.raises(InvalidParameter, match="secret 'db-pass' is in use by the following service: web"):
        await swarm.call(sw.DataRemove(kind="secret", ref="db-pass"), Done)
    version = shown["Version"]["Index"]
    with pytest.raises(InvalidParameter, match="only updates to Labels are allowed"):
        await swarm.call(sw.DataUpdate(kind="secret", ref=secret_id, version=version, spec={"Name": "db-pass", "Data": "eA=="}), Done)
    await swarm.call(sw.DataUpdate(kind="secret", ref=secret_id, version=version, spec={"Name": "db-pass", "Labels": {"c": "d"}}), Done)
    relabelled = (await swarm.call(sw.DataInspect(kind="secret", ref=secret_id), sw.DockerObject)).item  # type: ignore[attr-defined]
    assert relabelled["Spec"]["Labels"] == {"c": "d"}
    await swarm.call(sw.ServiceRemove(ref="web"), Done)
    await swarm.call(sw.DataRemove(kind="secret", ref="db-pass"), Done)
    with pytest.raises(NotFound, match="secret db-pass not found"):
        await swarm.call(sw.DataInspect(kind="secret", ref="db-pass"), sw.DockerObject)
