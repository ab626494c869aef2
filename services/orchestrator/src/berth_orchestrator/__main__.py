"""`python -m berth_orchestrator`: swarm mode's manager role on subjects.ORCHESTRATOR_RPC.

Every instance answers the API and the node engines' heartbeats from the swarm's KV bucket; the
holder of the lease also reconciles services into tasks (lease.Leadership).
"""

from __future__ import annotations

import os
from pathlib import Path

from berth_contracts import subjects
from berth_contracts import swarm as s
from berth_contracts import swarmnode as sn
from berth_contracts.errors import Unavailable
from berth_kit.rpc import RpcServer
from berth_kit.service import ServiceContext, run_service
from berth_kit.swarmbus import SWARM_BUS_ENV

from berth_orchestrator.admission import Admission
from berth_orchestrator.api import SwarmApi
from berth_orchestrator.dataapi import DataApi
from berth_orchestrator.dispatcher import Dispatcher
from berth_orchestrator.joining import Worker
from berth_orchestrator.lease import Leadership
from berth_orchestrator.membership import Membership
from berth_orchestrator.serviceapi import ServiceApi
from berth_orchestrator.servicelogs import NodeLogEndpoint, NodeLogSource, ServiceLogReader
from berth_orchestrator.store import SwarmStore
from berth_orchestrator.swarmlink import SwarmLink
from berth_orchestrator.unlocking import Unlocking

SERVICE = "berth-orchestrator"


def register(
    server: RpcServer, api: SwarmApi, dispatcher: Dispatcher, logs: ServiceLogReader, worker: Worker | None = None
) -> None:
    services = ServiceApi(api.store, api.leadership, api.managed, api.leader_node)
    server.handle(s.SwarmInit, api.init)
    server.handle(s.SwarmJoin, api.join)
    server.handle(s.SwarmInspect, api.inspect)
    server.handle(s.SwarmUpdate, api.update)
    server.handle(s.SwarmLeave, api.leave)
    unlocking = Unlocking(api)
    server.handle(s.SwarmUnlock, unlocking.unlock)
    server.handle(s.SwarmUnlockKey, unlocking.unlock_key)
    server.handle(s.LocalNodeInfo, api.local_info)
    server.handle(s.NodeList, api.node_list)
    server.handle(s.NodeInspect, api.node_inspect)
    server.handle(s.NodeUpdate, api.node_update)
    server.handle(s.NodeRemove, api.node_remove)
    server.handle(s.ServiceCreate, services.service_create)
    server.handle(s.ServiceList, services.service_list)
    server.handle(s.ServiceInspect, services.service_inspect)
    server.handle(s.ServiceUpdate, services.service_update)
    server.handle(s.ServiceRemove, services.service_remove)
    server.handle(s.TaskList, services.task_list)
    server.handle(s.TaskInspect, services.task_inspect)
    server.handle(s.ServiceLogs, logs.logs)
    data = DataApi(api.store, api.managed)
    server.handle(s.DataCreate, data.create)
    server.handle(s.DataList, data.list)
    server.handle(s.DataInspect, data.inspect)
    server.handle(s.DataUpdate, data.update)
    server.handle(s.DataRemove, data.remove)

    async def heartbeat(cmd: sn.NodeHeartbeat) -> sn.NodeAssignments:
        """This node's engine: answered here on a manager, relayed to the managers on a worker."""
        notes = api.membership.worker()
        if notes is not None and worker is not None:
            return await worker.relay(cmd, notes)
        answer = await dispatcher.heartbeat(cmd)
        bus = api.membership.read()
        if not answer.in_swarm and (bus.server is not None or bus.remote is not None):
            # The node's part changed while this beat was answered (a demotion: the state read
            # was this node's own NATS already). "Not in a swarm" would make the engine remove
            # its tasks: it beats again instead.
            raise Unavailable("this node's part in the swarm is changing")
        return answer

    server.handle(sn.NodeHeartbeat, heartbeat)


async def serve(ctx: ServiceContext) -> None:
    store = SwarmStore(ctx.nc)
    link: SwarmLink | None = None

    async def announce() -> None:
        """Tasks changed: this node's engine, and the workers over the swarm server."""
        await ctx.nc.publish(subjects.SWARM_CHANGED, b"")
        if link is not None:
            await link.publish(subjects.SWARM_CHANGED, b"")

    bus_file = os.environ.get(SWARM_BUS_ENV)
    membership = Membership(Path(bus_file) if bus_file else None)
    leadership = Leadership(store, ctx.node, announce)
    dispatcher = Dispatcher(store, leadership)
    admission = Admission(store, membership, dispatcher, leadership, ctx.node)
    worker = Worker(membership, ctx.rpc, store)
    log_endpoint = NodeLogEndpoint(NodeLogSource(ctx.nc, ctx.rpc, ctx.tg), ctx.tg, ctx.name, ctx.node)
    link = SwarmLink(ctx.nc, ctx.tg, store, membership, admission, leadership, ctx.name, ctx.node, log_endpoint)
    api = SwarmApi(store, leadership, membership, admission, worker, link)
    logs = ServiceLogReader(api.managed, ctx.nc, link.bus, ctx.tg)
    server = ctx.server(subjects.ORCHESTRATOR_RPC, s.OrchestratorRequest, queue=subjects.ORCHESTRATOR_QUEUE)
    register(server, api, dispatcher, logs, worker)
    if membership.read().server is not None:
        store.await_server()  # a manager restarted: its state is on its swarm server (link.run)
    if membership.managed:
        ctx.tg.start_soon(link.run)
    else:  # a swarm on this host only: its nodes' logs are asked for on this NATS
        await log_endpoint.serve_at(ctx.nc, subjects.swarm_logs("*"))
    ctx.tg.start_soon(leadership.run)


def main() -> None:
    run_service(SERVICE, serve)


if __name__ == "__main__":
    main()
