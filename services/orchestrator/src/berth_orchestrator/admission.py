"""A manager admitting nodes (the other end is joining.py's Worker): it checks the join token,
records the node, and adds its node user to the bus (or, for a manager, its route; a lone
manager's state first moves into the cluster: Restore). It also serves the nodes' sessions
(their heartbeats, their leaving) and promotes a worker."""

from __future__ import annotations

import logging
import time

import anyio
from berth_common.gotime import rfc3339nano
from berth_contracts import swarm as sw
from berth_contracts import swarmnode as sn
from berth_contracts.base import Done
from berth_contracts.errors import Conflict, InvalidParameter, Unavailable
from berth_kit.rpc import request_subject
from berth_kit.swarmbus import SwarmBus, SwarmServer

from berth_orchestrator import ids, swarmca
from berth_orchestrator.dispatcher import Dispatcher
from berth_orchestrator.lease import Leadership
from berth_orchestrator.membership import (
    MAX_STATE_COPIES,
    Membership,
    check_password_hash,
    host_port,
    joined,
    manager_server,
    route_addr,
)
from berth_orchestrator.reconcile import MOVING_GRACE
from berth_orchestrator.records import NodeRecord
from berth_orchestrator.restore import Restore
from berth_orchestrator.store import Snapshot, SwarmStore

log = logging.getLogger(__name__)


class Admission:
    """The manager's side: admits nodes, serves their sessions, keeps the bus's users current."""

    def __init__(
        self, store: SwarmStore, membership: Membership, dispatcher: Dispatcher, leadership: Leadership, node: str
    ) -> None:
        self.store = store
        self.membership = membership
        self.dispatcher = dispatcher
        self.leadership = leadership
        self.node = node  # this node's BERTH_NODE

    async def rewrite_bus(self, snap: Snapshot) -> None:
        """This manager's swarm server from the state (its users, its routes): after init, a
        join, a token rotation, a node's removal or departure, and every few seconds on every
        manager (swarmlink), as the others change the state too. A lone manager's server that
        gets routes (a second manager) keeps its state aside first (into_cluster)."""
        me = snap.node_by_berth_name(self.node)
        bus = self.membership.read()
        if snap.cluster is None or me is None or me.role != "manager" or bus.server is None:
            return
        # In a thread: ensure may wait for the key's other users (follow, a durable write).
        store_key_id = bus.server.store_key_id or await anyio.to_thread.run_sync(self.membership.store_key.ensure)
        server = manager_server(
            me, snap.cluster, snap.nodes.values(), bus.server, self.membership.server_store, self.membership.server_tls(),
            store_key_id,
        )
        if server == bus.server:
            return
        if server.cluster and not bus.server.cluster:
            await self.into_cluster(bus.server, len(server.routes) + 1)
        self.membership.write(SwarmBus(server=server, member=bus.member))

    async def admit(self, cmd: sw.NodeJoin) -> sw.NodeJoined:
        snap = await self.store.load()
        cluster = snap.cluster
        if cluster is None:
            raise Unavailable("this node is no longer a swarm manager")
        if ids.token_matches(cmd.join_token, cluster.ca_digest, cluster.manager_secret):
            return await self._admit_manager(snap, cmd)
        if not ids.token_matches(cmd.join_token, cluster.ca_digest, cluster.worker_secret):
            raise InvalidParameter("invalid join token")
        password_hash = check_password_hash(cmd.password_hash)
        cert_request = swarmca.checked_request(cmd.cert_request) if cmd.cert_request else ""
        await self._forget_departed(snap, cmd.node)
        stamp = rfc3339nano()
        node = NodeRecord(
            id=ids.new_id(), berth_node=cmd.node, hostname=cmd.hostname, created_at=stamp, updated_at=stamp,
            role="worker", addr=cmd.addr, leaf_password_hash=password_hash, engine_version=cmd.engine_version,
            last_seen=time.time(), listen=cmd.listen,  # its swarm port, should it be promoted
            port=host_port(cmd.listen)[1] if cmd.listen else 2377, cert_request=cert_request,
        )  # fmt: skip
        await self.store.put(snap, node)
        await self.store.put_seen(snap, node.id, node.last_seen)
        await self.rewrite_bus(snap)
        self.leadership.poke()
        log.info("node %s (%s) joined the swarm as a worker", node.id, cmd.node)
        return sw.NodeJoined(node_id=node.id, cluster_id=cluster.id, managers=_swarm_ports(snap))

    async def _forget_departed(self, snap: Snapshot, berth_node: str) -> None:
        old = snap.node_by_berth_name(berth_node)
        if old is None:
            return
        if old.role == "manager" or old.leaf_password_hash:
            raise Conflict(f"a node named {berth_node} is already part of this swarm")
        await self.store.delete(snap, f"node.{old.id}")  # it left: it comes back as a new node
        snap.nodes.pop(old.id, None)

    async def _admit_manager(self, snap: Snapshot, cmd: sw.NodeJoin) -> sw.NodeJoined:
        """A manager: a route into the managers' cluster. A lone manager's swarm server moves
        into the cluster with it (restarted; its state kept aside until the cluster answers)."""
        cluster = snap.cluster
        me = snap.node_by_berth_name(self.node)
        bus = self.membership.read()
        if cluster is None or me is None or bus.server is None or not cmd.listen:
            raise Unavailable("this manager cannot take another manager: its swarm has no port for other hosts")
        await self._forget_departed(snap, cmd.node)
        host, port = host_port(cmd.listen)
        stamp = rfc3339nano()
        node = NodeRecord(
            id=ids.new_id(), berth_node=cmd.node, hostname=cmd.hostname, created_at=stamp, updated_at=stamp,
            role="manager", addr=cmd.addr, listen=joined(host, port), port=port,
            routes_at=route_addr(cmd.addr, port), engine_version=cmd.engine_version,
            last_seen=time.time() + MOVING_GRACE,
        )  # fmt: skip
        if cluster.ca_cert:
            node.cert_request = swarmca.checked_request(cmd.cert_request)
            node.cert = swarmca.sign_manager(cluster, node)
        await self.store.put(snap, node)
        await self.store.put_seen(snap, node.id, node.last_seen)
        others = [n for n in snap.nodes.values() if n.role == "manager" and n.routes_at and n.id != node.id]
        await self.rewrite_bus(snap)
        self.leadership.poke()
        server = self.membership.read().server
        assert server is not None
        log.info("node %s (%s) joined the swarm as a manager", node.id, cmd.node)
        return sw.NodeJoined(
            node_id=node.id, cluster_id=cluster.id, managers=_swarm_ports(snap), role="manager",
            cluster=server.cluster, routes=sorted(n.routes_at for n in others),
            route_user=cluster.route_user, route_password=cluster.route_password,
            cert=node.cert, ca_cert=cluster.ca_cert, route_pins=list(server.route_pins),
        )  # fmt: skip

    async def into_cluster(self, server: SwarmServer, managers: int) -> None:
        """A second manager: a lone manager's state is kept aside before its swarm server
        restarts into the managers' cluster (Restore; swarmlink puts it back). The store is
        closed before the copy (requests answer 503 until the state is in the cluster), so
        nothing accepted here after it is lost with the lone server's bucket."""
        if not server.cluster:
            entries = await self.store.dump(close=True)
            try:
                Restore(self.membership.restore_path).save(entries, min(MAX_STATE_COPIES, managers))
            except BaseException:
                self.store.reopen()  # the move does not start
                raise

    async def promote(self, snap: Snapshot, node: NodeRecord) -> None:
        """`docker node promote`: the worker gets a route into the managers' cluster; its
        session tells it at its next heartbeat (Worker.relay), and it serves as a manager.
        A lone manager routes to it only once it was told (Dispatcher.heartbeat sets its
        route then): a cluster of two has no majority until both serve, and the promotion
        is told from the state."""
        bus = self.membership.read()
        if bus.server is None or not node.listen or not node.leaf_password_hash:
            raise Unavailable(
                "promoting this node is not possible: its swarm has no port for other hosts, or the node "
                "joined before berth recorded its swarm port (rejoin it with the manager token)"
            )
        cluster = snap.cluster
        assert cluster is not None
        if cluster.ca_cert and not node.cert_request:
            raise Unavailable("promoting this node is not possible: it joined before berth's swarm had TLS (rejoin it)")
        host, port = host_port(node.listen)
        if cluster.ca_cert:
            node.cert = swarmca.sign_manager(cluster, node)
        node.role, node.port = "manager", port
        node.routes_at = route_addr(node.addr, port) if bus.server.cluster else ""
        node.updated_at = rfc3339nano()
        await self.store.put(snap, node)
        if snap.ready(node):
            await self.store.hold_seen(node.id, time.time() + MOVING_GRACE)
        await self.rewrite_bus(snap)
        self.leadership.poke()
        log.info("node %s (%s) promoted to manager", node.id, node.berth_node)

    async def heartbeat(self, cmd: sn.NodeHeartbeat) -> sn.NodeAssignments:
        return await self.dispatcher.heartbeat(cmd, node_id=_session_node())

    async def leave(self, cmd: sw.NodeLeave) -> Done:
        """dockerd: a worker that left shows Down until `docker node rm`; its session ends."""
        snap = await self.store.load()
        node = snap.nodes.get(_session_node())
        if node is None or node.berth_node != cmd.node:
            return Done()
        node.leaf_password_hash = ""
        node.updated_at = rfc3339nano()
        await self.store.put(snap, node)
        await self.store.put_seen(snap, node.id, 0.0)
        await self.rewrite_bus(snap)
        self.leadership.poke()
        return Done()


def _swarm_ports(snap: Snapshot) -> list[str]:
    return sorted(joined(n.addr, n.port) for n in snap.nodes.values() if n.role == "manager")


def _session_node() -> str:
    """The node whose session subject carried this request: what its credentials allow."""
    return request_subject().rsplit(".", 1)[-1]
