"""The orchestrator on a real, locked nats-server with JetStream: the API with the gateway's
credentials, heartbeats with the engine's, and what the other identities cannot reach."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from berth_contracts import subjects
from berth_contracts import swarm as sw
from berth_contracts.base import Done
from berth_contracts.buspermissions import API_GATEWAY, ENGINE, LIFECYCLE, ORCHESTRATOR
from berth_contracts.errors import Conflict, InvalidParameter, NotFound, Unavailable
from berth_kit.busauth import creds_path
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcClient, RpcServer
from berth_kit.testing import authenticated_nats_server
from berth_orchestrator.__main__ import register
from berth_orchestrator.api import SwarmApi
from berth_orchestrator.dispatcher import Dispatcher
from berth_orchestrator.lease import Leadership
from berth_orchestrator.store import SwarmStore
from nats.aio.client import Client as NATS

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

    async def beat(self, *reports: sw.TaskReport) -> sw.NodeAssignments:
        return await self.engine.request(
            subjects.ORCHESTRATOR_RPC,
            sw.NodeHeartbeat(node="n1", hostname="host1", tasks=list(reports)),
            sw.NodeAssignments,
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
        register(server, SwarmApi(store, leadership), Dispatcher(store, leadership))
        try:
            async with anyio.create_task_group() as tg:
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
    await swarm.beat(*(sw.TaskReport(task_id=a.task_id, state="running", message="started",
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
