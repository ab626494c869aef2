"""The Engine API's /swarm, /nodes, /services and /tasks, with dockerd's answers and words."""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from functools import partial

import anyio
from berth_common.gotime import rfc3339nano
from berth_contracts import swarm as sw
from berth_contracts.base import Done
from berth_contracts.errors import Conflict, InvalidParameter, NotImplementedByBerth, Unavailable
from berth_kit.swarmbus import SwarmBus

from berth_orchestrator import ids, specs, swarmca, views
from berth_orchestrator.admission import Admission
from berth_orchestrator.autolock import SWARM_LOCKED, unlock_key_for
from berth_orchestrator.joining import Worker
from berth_orchestrator.lease import Leadership
from berth_orchestrator.lookup import check_filters, labels_match, node_name, resolve
from berth_orchestrator.membership import (
    Membership,
    advertised_host,
    check_listen,
    host_port,
    joined,
    manager_server,
    route_addr,
)
from berth_orchestrator.reconcile import MOVING_GRACE
from berth_orchestrator.records import (
    ClusterRecord,
    Document,
    NodeRecord,
)
from berth_orchestrator.store import Snapshot, SwarmStore
from berth_orchestrator.swarmlink import SwarmLink

log = logging.getLogger(__name__)

NOT_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)
ALREADY_IN_SWARM = (
    'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and '
    "join another one."
)
LAST_MANAGER = (
    "You are attempting to leave the swarm on a node that is participating as a manager. "
    "Removing the last manager erases all current state of the swarm. Use `--force` to ignore "
    "this message."
)

AUTOLOCK_NEEDS_A_SERVER = (
    "autolock is not supported by berth for this swarm: its state is in this node's own NATS (a "
    "swarm initialised without --advertise-addr, or under berth up --nats-url); `docker swarm "
    "init --autolock` keeps it encrypted on a swarm server"
)
JOIN_AS_MANAGER_WITHIN = 30.0
HEARD_WITHIN = 10.0  # seconds a promotion waits for a node unheard for a moment

class SwarmApi:
    def __init__(
        self,
        store: SwarmStore,
        leadership: Leadership,
        membership: Membership | None = None,
        admission: Admission | None = None,
        worker: Worker | None = None,
        link: SwarmLink | None = None,
    ) -> None:
        self.store = store
        self.leadership = leadership
        self.membership = membership or Membership(None)
        self.admission = admission
        self.worker = worker
        self.link = link

    async def _roles(self, snap: Snapshot | None = None) -> None:
        """After a change of the nodes or tokens: this manager's swarm server (its users), and
        the link to it (opened at init, closed at leave)."""
        if snap is not None and self.admission is not None:
            await self.admission.rewrite_bus(snap)
        if self.link is not None:
            await self.link.sync()

    async def _autolock(self, cluster: ClusterRecord) -> None:
        """This manager's store key wrapped by the swarm's unlock key now, not at the link's
        next round (a `berth down` right after `--autolock` finds it locked); the others follow.
        (init and update refuse autolock where there is no swarm server.)"""
        server = self.membership.read().server
        if server is not None and server.store_key_id:
            await anyio.to_thread.run_sync(self.membership.store_key.follow, server.store_key_id, cluster.unlock_key)

    async def managed(self) -> Snapshot:
        """The state, on a manager; dockerd's words elsewhere."""
        snap = await self.store.load()
        if snap.cluster is None:
            raise Unavailable(NOT_MANAGER)
        return snap

    # --- /swarm ------------------------------------------------------------------------------
    async def init(self, cmd: sw.SwarmInit) -> sw.SwarmInitialised:
        snap = await self.store.load()
        if snap.cluster is not None or self.membership.worker() is not None:
            raise Unavailable(ALREADY_IN_SWARM)
        specs.check_swarm_features(cmd.spec, None)
        pools, subnet_size, data_path_port = specs.address_pools(cmd.default_addr_pool, cmd.subnet_size, cmd.data_path_port)
        spec = views.swarm_spec(cmd.spec)
        listen_host, port = host_port(cmd.listen_addr or "0.0.0.0:2377")
        listen = joined(listen_host or "0.0.0.0", port)
        # Without an address that names this host: loopback (one host, nothing to reach).
        addr = advertised_host(cmd.advertise_addr, cmd.listen_addr) or "127.0.0.1"
        # The swarm port (nats-server's leafnode listener) opens when other hosts can reach this
        # one: an address to advertise was given. Without one the swarm stays on this host (its
        # address would be loopback), and nats-server is not restarted for a port nobody uses;
        # unless autolock is asked for: the swarm server's store is the one encrypted.
        unlock_key = unlock_key_for(spec, "", rotate=False)
        loopback = addr.startswith("127.") or addr == "::1"
        if not self.membership.managed or (loopback and not unlock_key):
            listen = ""
        if unlock_key and not listen:
            raise NotImplementedByBerth(AUTOLOCK_NEEDS_A_SERVER)
        if listen:
            await anyio.to_thread.run_sync(check_listen, listen)
        stamp = rfc3339nano()
        advertised_port = _advertised_port(cmd.advertise_addr, port)
        node = NodeRecord(
            id=ids.new_id(), berth_node=cmd.node, hostname=cmd.hostname, created_at=stamp,
            updated_at=stamp, role="manager", addr=addr, listen=listen, port=advertised_port,
            routes_at=route_addr(addr, port) if listen else "", last_seen=time.time(),
        )  # fmt: skip
        ca_cert, ca_key = await anyio.to_thread.run_sync(swarmca.new_ca)
        cluster = ClusterRecord(
            id=ids.new_id(), created_at=stamp, updated_at=stamp, spec=spec, ca_digest=swarmca.digest(ca_cert),
            worker_secret=ids.new_secret(), manager_secret=ids.new_secret(),
            route_user=f"route-{ids.new_secret()[:12]}", route_password=ids.new_secret() + ids.new_secret(),
            ca_cert=ca_cert, ca_key=ca_key, default_addr_pool=pools, subnet_size=subnet_size,
            data_path_port=data_path_port, unlock_key=unlock_key,
        )  # fmt: skip
        if listen:
            names = await anyio.to_thread.run_sync(swarmca.local_names, addr, listen_host)
            key, node.cert_request = swarmca.new_key_and_request(names)
            node.cert = swarmca.sign_manager(cluster, node)
            self.membership.tls.write_key(key)
            self.membership.tls.write_cert(node.cert, ca_cert)
            snap = await self._serve_other_hosts(node, cluster)
        await self.store.put(snap, node)
        await self.store.put_seen(snap, node.id, node.last_seen)
        await self.store.put_cluster(snap, cluster)
        await self._roles(snap)
        await self._autolock(cluster)
        return sw.SwarmInitialised(node_id=node.id)

    async def _serve_other_hosts(self, node: NodeRecord, cluster: ClusterRecord) -> Snapshot:
        """A swarm other hosts can join lives on this node's swarm server (a second
        nats-server; berth_kit.swarmbus): started here, the state then written there."""
        store_root = self.membership.server_store
        await anyio.to_thread.run_sync(partial(shutil.rmtree, store_root, ignore_errors=True))  # a swarm left
        store_key_id = await anyio.to_thread.run_sync(self.membership.store_key.ensure)
        server = manager_server(node, cluster, [node], None, store_root, self.membership.server_tls(), store_key_id)
        self.membership.write(SwarmBus(server=server, member={"addr": node.addr}))  # shown while locked
        await self._roles()
        return Snapshot()

    async def join(self, cmd: sw.SwarmJoin) -> Done:
        if await self.store.in_swarm() or self.membership.worker() is not None:
            raise Unavailable(ALREADY_IN_SWARM)
        if self.worker is None:
            raise Unavailable("joining a swarm is not supported by this orchestrator")
        answer = await self.worker.join(cmd)
        if answer.role == "manager":
            try:
                await self._roles()
            except TimeoutError:  # its new server slow to start: the link keeps trying (swarmlink)
                log.warning("joined as a manager; the swarm server is not reachable yet, still trying")
            await self._state_replicated(cmd.node)
        return Done()

    async def _state_replicated(self, berth_node: str) -> None:
        """A new manager: `join` returns once the state reads here, as with dockerd: twice in a
        row with this node a manager in it (the CLI's `docker info` right after must say so,
        and a store still catching up can answer once and fail the next read)."""
        readable = 0
        with anyio.move_on_after(JOIN_AS_MANAGER_WITHIN):
            while True:
                try:
                    me = (await self.store.load()).node_by_berth_name(berth_node)
                    readable = readable + 1 if me is not None and me.role == "manager" else 0
                except Unavailable:
                    readable = 0
                if readable == 2:
                    return
                await anyio.sleep(0.25)
        raise Unavailable(
            "joined the swarm as a manager, but the managers' cluster did not answer within "
            f"{JOIN_AS_MANAGER_WITHIN:.0f}s; this node keeps trying (check that the managers reach "
            "each other's route port, the swarm port + 1)"
        )

    async def inspect(self, cmd: sw.SwarmInspect) -> sw.DockerObject:
        snap = await self.managed()
        assert snap.cluster is not None
        return sw.DockerObject(item=views.cluster_doc(snap, snap.cluster, tokens=True))

    async def update(self, cmd: sw.SwarmUpdate) -> Done:
        snap = await self.managed()
        cluster = snap.cluster
        assert cluster is not None
        if cmd.version != snap.revision("cluster"):
            raise Conflict("update out of sequence")
        if cmd.spec:
            specs.check_swarm_features(cmd.spec, cluster.spec)
            cluster.spec = views.swarm_spec(cmd.spec)
        if cmd.rotate_worker_token:
            cluster.worker_secret = ids.new_secret()
        if cmd.rotate_manager_token:
            cluster.manager_secret = ids.new_secret()
        cluster.unlock_key = unlock_key_for(cluster.spec, cluster.unlock_key, cmd.rotate_manager_unlock_key)
        if cluster.unlock_key and self.membership.read().server is None:
            raise NotImplementedByBerth(AUTOLOCK_NEEDS_A_SERVER)
        cluster.updated_at = rfc3339nano()
        await self.store.put_cluster(snap, cluster)
        await self._roles(snap)  # the join users follow the tokens
        await self._autolock(cluster)
        return Done()

    async def leave(self, cmd: sw.SwarmLeave) -> Done:
        notes = self.membership.worker()
        if notes is not None and self.worker is not None:
            return await self.worker.leave(cmd, notes)
        try:
            snap = await self.store.load()
        except Unavailable:
            if not cmd.force or self.membership.read().server is None:
                raise
            # The managers without a JetStream leader (too few online): --force leaves anyway,
            # as dockerd's does; the others keep this node's record.
            self.membership.write(SwarmBus())
            await self._roles()
            return Done()
        node = snap.node_by_berth_name(cmd.node)
        if snap.cluster is None or node is None:
            raise Unavailable("This node is not part of a swarm")
        managers = [n for n in snap.nodes.values() if n.role == "manager"]
        if node.role == "manager" and len(managers) > 1:
            return await self._manager_leaves(snap, node, managers, cmd.force)
        if node.role == "manager" and not cmd.force:
            raise Unavailable(LAST_MANAGER)
        # The only manager: leaving erases the swarm; the engines remove the task containers
        # when their next heartbeat hears that they are no longer in one.
        await self.store.purge_all()
        if not self.membership.read().empty:
            self.membership.write(SwarmBus())  # the swarm port closes
        await self._roles()
        return Done()

    async def _manager_leaves(
        self, snap: Snapshot, node: NodeRecord, managers: list[NodeRecord], force: bool
    ) -> Done:
        """One of several managers: the others keep the swarm (it shows Down, as with dockerd,
        until it is removed). Without --force refused, as dockerd refuses it, naming the loss of
        the majority when the rest would not be one."""
        if not force:
            reachable = sum(1 for n in managers if snap.ready(n))
            message = "You are attempting to leave the swarm on a node that is participating as a manager. "
            if reachable - 2 <= len(managers) - reachable:  # moby's removingManagerCausesLossOfQuorum
                message += (
                    f"Removing this node leaves {reachable - 1} managers out of {len(managers)}. "
                    "Without a Raft quorum your swarm will be inaccessible. "
                )
            raise Unavailable(
                message + "The only way to restore a swarm that has lost consensus is to reinitialize it "
                "with `--force-new-cluster`. Use `--force` to suppress this message."
            )
        await self.store.put_seen(snap, node.id, 0.0)
        self.membership.write(SwarmBus())  # its swarm server stops; the others keep the state
        await self._roles()
        return Done()

    async def local_info(self, cmd: sw.LocalNodeInfo) -> sw.NodeSwarmState:
        notes = self.membership.worker()
        if notes is not None:
            return sw.NodeSwarmState(info=views.info_worker(notes))
        bus = self.membership.read()
        if self.link is not None and self.link.locked and bus.server is not None:  # as dockerd: no node ID
            return sw.NodeSwarmState(info=views.info_without_cluster("locked", addr=bus.member.get("addr", ""), error=SWARM_LOCKED))
        if not await self.store.in_swarm():  # every `docker info` asks: one key read outside a swarm
            return sw.NodeSwarmState(info=views.info_without_cluster())
        snap = await self._read_soon()
        node = snap.node_by_berth_name(cmd.node)
        if snap.cluster is None or node is None:
            return sw.NodeSwarmState(info=views.info_without_cluster())
        return sw.NodeSwarmState(info=views.info_active(snap, node))

    async def _read_soon(self, within: float = 2.0) -> Snapshot:
        """The state, read again for a moment while a manager's store catches up (JetStream
        just elected, a server just joined): `docker info` would read "inactive" otherwise."""
        deadline = time.monotonic() + within
        while True:
            try:
                return await self.store.load()
            except Unavailable:
                if time.monotonic() > deadline or self.membership.read().server is None:
                    raise
            await anyio.sleep(0.2)

    # --- /nodes ------------------------------------------------------------------------------
    def _node_doc(self, snap: Snapshot, node: NodeRecord) -> Document:
        return views.node_doc(snap, node, self.leader_node(snap))

    def leader_node(self, snap: Snapshot) -> str:
        """The node whose orchestrator holds the lease (one node: the manager)."""
        managers = sorted((n for n in snap.nodes.values() if n.role == "manager"), key=lambda n: n.created_at)
        for node in managers:
            if node.berth_node == self.leadership.leader_node:
                return node.id
        return managers[0].id if managers else ""

    async def node_list(self, cmd: sw.NodeList) -> sw.DockerObjects:
        snap = await self.managed()
        f = cmd.filters
        check_filters(f, {"id", "label", "membership", "name", "node.label", "role"})
        out = []
        for node in sorted(snap.nodes.values(), key=lambda n: n.created_at):
            if f.get("id") and not any(node.id.startswith(v) for v in f["id"]):
                continue
            if f.get("name") and not any(node_name(node).startswith(v) for v in f["name"]):
                continue
            if f.get("role") and node.role not in f["role"]:
                continue
            if f.get("membership") and "accepted" not in f["membership"]:
                continue
            if f.get("node.label") and not labels_match(node.labels, f["node.label"]):
                continue
            if f.get("label") and not labels_match(node.engine_labels, f["label"]):
                continue
            out.append(self._node_doc(snap, node))
        return sw.DockerObjects(items=out)

    async def node_inspect(self, cmd: sw.NodeInspect) -> sw.DockerObject:
        snap = await self.managed()
        ref = cmd.ref
        if ref == "self":
            me = snap.node_by_berth_name(self.leadership.node)
            ref = me.id if me is not None else self.leader_node(snap)
        node = resolve(snap.nodes, ref, "node", node_name)
        return sw.DockerObject(item=self._node_doc(snap, node))

    async def node_update(self, cmd: sw.NodeUpdate) -> Done:
        snap = await self.managed()
        node = resolve(snap.nodes, cmd.ref, "node", node_name)
        if cmd.version != snap.revision(f"node.{node.id}"):
            raise Conflict("update out of sequence")
        spec = specs.check_node_spec(cmd.spec)
        role = spec.get("Role") or node.role
        if role == "manager" and node.role == "worker":
            if self.admission is None:
                raise Unavailable(f"node {node.id} cannot be promoted: it is not ready")
            snap, node = await self._heard(snap, node)
            await self.admission.promote(snap, node)
            role = "manager"
        if role == "worker" and node.role == "manager":
            await self._demote(snap, node)
        node.role = role
        node.availability = spec.get("Availability") or node.availability
        node.labels = {str(k): str(v) for k, v in (spec.get("Labels") or {}).items()}
        node.name = str(spec.get("Name") or "")
        node.updated_at = rfc3339nano()
        await self.store.put(snap, node)
        return Done()

    async def _heard(self, snap: Snapshot, node: NodeRecord) -> tuple[Snapshot, NodeRecord]:
        """The node, once heard: one unheard for a moment (its beats paused while the managers
        re-elect) is waited for a little before a promotion is refused."""
        deadline = time.monotonic() + HEARD_WITHIN
        while not snap.ready(node):
            if time.monotonic() > deadline:
                raise Unavailable(f"node {node.id} cannot be promoted: it is not ready")
            await anyio.sleep(0.5)
            snap = await self.managed()
            found = snap.nodes.get(node.id)
            if found is None:
                raise Unavailable(f"node {node.id} cannot be promoted: it left the swarm")
            node = found
        return snap, node

    async def _demote(self, snap: Snapshot, node: NodeRecord) -> None:
        """`docker node demote`, checked as swarmkit checks a raft member's removal. The node
        itself then links to the others as a worker (SwarmLink.step_down), and the leader
        removes its server from JetStream's cluster (SwarmLink.remove_peers); one of two, the
        other moves the state to a server of its own (SwarmLink.shrink_to_one)."""
        managers = [n for n in snap.nodes.values() if n.role == "manager"]
        if len(managers) == 1:
            raise InvalidParameter("attempting to demote the last manager of the swarm")
        rest = [n for n in managers if n.id != node.id]
        if sum(1 for n in rest if snap.ready(n)) < len(rest) // 2 + 1:
            raise Unavailable("can't remove member from the raft: this would result in a loss of quorum")
        # Its route stays until it left JetStream's cluster: cut off before, it could not
        # write its own step down (SwarmLink.remove_peers clears it).
        node.role, node.leaving_cluster = "worker", bool(node.routes_at)
        now = time.time()
        node.leaving_since, node.hash_at_demotion = now, node.leaf_password_hash
        if snap.ready(node):
            # Its heartbeats pause while it moves from its swarm server to a worker's link.
            await self.store.hold_seen(node.id, now + MOVING_GRACE)
        log.info("node %s (%s) demoted to worker", node.id, node.berth_node)

    async def node_remove(self, cmd: sw.NodeRemove) -> Done:
        snap = await self.managed()
        node = resolve(snap.nodes, cmd.ref, "node", node_name)
        if node.role == "manager":
            raise InvalidParameter(
                f"rpc error: code = FailedPrecondition desc = node {node.id} is a cluster manager and is "
                "a member of the raft cluster. It must be demoted to worker before removal"
            )
        if not cmd.force and snap.ready(node):
            raise InvalidParameter(
                f"rpc error: code = FailedPrecondition desc = node {node.id} is not down and can't be "
                "removed"
            )
        if node.leaving_cluster and not cmd.force:  # its record says which server to remove
            raise Unavailable(
                f"node {node.id} was demoted and its server is still leaving the managers' cluster: "
                "try again in a few seconds"
            )
        await self.store.delete(snap, f"node.{node.id}")
        with contextlib.suppress(Conflict):
            await self.store.delete(snap, f"seen.{node.id}")
        snap.nodes.pop(node.id, None)
        await self._roles(snap)  # its node user goes
        return Done()


def _advertised_port(advertise: str, listen_port: int) -> int:
    """--advertise-addr's port when it names one, else the listening port."""
    if advertise and (advertise.count(":") == 1 or advertise.startswith("[")):
        return host_port(advertise, listen_port)[1]
    return listen_port
