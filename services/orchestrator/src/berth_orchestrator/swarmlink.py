"""A manager's link to its swarm server (berth_kit.swarmbus): the connection the swarm's state
and the other nodes' sessions go through, while swarm.json names a server.

- Connects when the file names a server (init with an address to advertise, a join as a
  manager) and points the store at it; closes and points the store back at the node's own NATS
  when the file no longer does (leave).
- Serves the other nodes there: joins on subjects.SWARM_JOIN and each node's session on its
  subjects.swarm_node(id). Only managers do: a worker's own orchestrator must never take its
  node's requests for the managers (a queue group prefers its local members).
- Keeps the server's part of the file in step with the state (its users follow the tokens and
  the nodes; its routes, the other managers), restores the state after the move into a cluster
  (Restore), and, on the leader, keeps one copy of the state per manager, three at most.
- `docker node demote`: the demoted manager steps down to a worker's link (step_down); the
  leader then removes its server from JetStream's cluster (remove_peers). One of two managers
  demoted: the other moves the state to a server of its own (shrink_to_one), and only then
  does the demoted one's server go (a cluster of two without one has no majority).
- Serves NodeLogs (`docker service logs`) for this node where the managers send them.
- Autolock: a manager whose store key is locked does not connect (its server cannot start)
  and every read of the state answers that it is locked, until `docker swarm unlock`; an
  unlocked one keeps its store key wrapped by the swarm's unlock key (autolock.StoreKey).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import socket
from dataclasses import replace
from functools import partial

import anyio
import msgspec
from anyio.abc import TaskGroup
from berth_common.gotime import rfc3339nano
from berth_contracts import subjects
from berth_contracts import swarm as sw
from berth_contracts.errors import BerthError, Conflict
from berth_kit.busauth import Credentials
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcServer
from berth_kit.swarmbus import (
    SWARM_SERVER_USER,
    SWARM_SYSTEM_USER,
    SwarmBus,
    SwarmServer,
)
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from berth_orchestrator import swarmca
from berth_orchestrator.admission import Admission
from berth_orchestrator.autolock import SWARM_LOCKED
from berth_orchestrator.lease import Leadership
from berth_orchestrator.membership import (
    MAX_STATE_COPIES,
    Membership,
    hash_password,
    host_port,
    joined,
    manager_server,
    worker_notes,
)
from berth_orchestrator.records import CLUSTER_KEY, NodeRecord, encode, node_ready
from berth_orchestrator.restore import Restore
from berth_orchestrator.servicelogs import NodeLogEndpoint
from berth_orchestrator.store import Snapshot, SwarmStore

log = logging.getLogger(__name__)

CHECK = 0.5  # the file, for a server to connect to or leave
MAINTAIN = 2.0  # the server's users and routes, the restore, the copies
CONNECT_WITHIN = 30.0
REMOVE_PEER = "$JS.API.SERVER.REMOVE"  # a system account request, answered by the meta leader
NOT_A_PEER = 10044  # JetStream's "server is not a member of the cluster"
# A demoted manager that has not stepped down within this (while its engine beats) never
# will: it was promoted and demoted before it was told, and never served (stepped_down).
STEP_DOWN_WITHIN = 60.0
SHRINKING = "shrinking"  # a demoted node's note: "<other's swarm port> <other's route port>"


class SwarmLink:
    def __init__(
        self, local: NATS, tg: TaskGroup, store: SwarmStore, membership: Membership, admission: Admission,
        leadership: Leadership, name: str, node: str, logs: NodeLogEndpoint | None = None,
    ) -> None:  # fmt: skip
        self._local = local
        self._tg = tg
        self._store = store
        self._membership = membership
        self._admission = admission
        self._leadership = leadership
        self._name = name
        self._node = node
        self._lock = anyio.Lock()
        self._conn: NATS | None = None
        self._key: tuple[int, str, str] | None = None
        self._servers: list[RpcServer] = []
        self._logs = logs
        self._alone_seen = 0
        self.locked = False  # autolock: the server waits for `docker swarm unlock`

    def bus(self) -> NATS:
        """The swarm's bus as this node reaches it: its swarm server, else its own NATS."""
        return self._conn or self._local

    async def publish(self, subject: str, data: bytes) -> None:
        if self._conn is not None:
            await self._conn.publish(subject, data)

    async def sync(self) -> None:
        """Connect to the server the file names, or leave the one it no longer names."""
        async with self._lock:
            server = self._membership.read().server
            locked = (
                server is not None and self._conn is None and bool(server.store_key_id)
                and await anyio.to_thread.run_sync(self._membership.store_key.locked, server.store_key_id)
            )  # fmt: skip
            if locked != self.locked:
                log.warning("swarm server: %s", "locked until `docker swarm unlock`" if locked else "unlocked")
                self.locked = locked
            if locked:
                self._store.await_server(SWARM_LOCKED)
                return
            key = (server.client_port, server.client_password, server.cluster) if server is not None else None
            if key == self._key:
                return
            await self._close()
            if server is None:
                await self._store.use(self._local)
                log.info("swarm server: left; the swarm's state is this node's own NATS again")
                return
            nc = await connect(
                f"nats://127.0.0.1:{server.client_port}", self._name, connect_deadline=CONNECT_WITHIN,
                creds=Credentials(SWARM_SERVER_USER, server.client_password),
            )  # fmt: skip
            self._conn, self._key = nc, key
            # A lone manager creates the bucket; in a cluster it comes from the cluster (Restore).
            pending = Restore(self._membership.restore_path).pending()
            await self._store.use(nc, on_server=True, create=not server.cluster and not pending)
            self._servers = self._endpoints(nc)
            for rpc in self._servers:
                await rpc.start(self._tg)
            log.info("swarm server: connected (%s)", "cluster " + server.cluster if server.cluster else "one manager")

    def _endpoints(self, nc: NATS) -> list[RpcServer]:
        join = RpcServer(nc, subjects.SWARM_JOIN, sw.NodeAdmission, queue=subjects.SWARM_NODE_QUEUE,
                         tracer_name=self._name, node=self._node)  # fmt: skip
        join.handle(sw.NodeJoin, self._admission.admit)
        sessions = RpcServer(nc, subjects.swarm_node("*"), sw.NodeSession, queue=subjects.SWARM_NODE_QUEUE,
                             tracer_name=self._name, node=self._node)  # fmt: skip
        sessions.handle(sw.NodeHeartbeat, self._admission.heartbeat)
        sessions.handle(sw.NodeLeave, self._admission.leave)
        return [join, sessions]

    async def _close(self) -> None:
        servers, self._servers = self._servers, []
        conn, self._conn, self._key = self._conn, None, None
        # The server may be gone already (a leave, a demotion): closing must not fail then, or
        # the store would stay pointed at it.
        with anyio.move_on_after(10), contextlib.suppress(Exception):
            for rpc in servers:
                await rpc.stop()
        with anyio.move_on_after(10), contextlib.suppress(Exception):
            if conn is not None:
                await conn.close()

    async def serve_logs(self) -> None:
        """NodeLogs (a manager reading this node's tasks' logs) where the managers send them."""
        if self._logs is None:
            return
        bus = self._membership.read()
        notes = worker_notes(bus)
        if bus.server is not None and self._conn is not None:
            await self._logs.serve_at(self._conn, subjects.swarm_logs(bus.server.name))
        elif notes is not None:
            await self._logs.serve_at(self._local, subjects.swarm_logs(notes["node_id"]))
        else:  # a swarm on this host only (or none yet)
            await self._logs.serve_at(self._local, subjects.swarm_logs("*"))

    async def maintain(self) -> None:
        bus = self._membership.read()
        server = bus.server
        if server is None or self._conn is None:
            return
        if bus.remote is not None and bus.member.get(SHRINKING):
            await self._await_other_alone(bus)
            return
        await self._restore(server)
        snap = await self._store.load()
        me = snap.nodes.get(server.name)
        if me is not None and me.role == "worker" and snap.cluster is not None:
            await self.step_down(snap, me, server)
            return
        leaving = [n for n in snap.nodes.values() if n.leaving_cluster]
        alone = me is not None and not any(n.role == "manager" and n.id != me.id for n in snap.nodes.values())
        if server.cluster and alone and leaving and me is not None:
            # Each live one links to this one as a worker first (its node user); one that is
            # down is not waited for.
            if all(stepped_down(n, snap.silence_until) for n in leaving):
                await self.shrink_to_one(snap, me, server, leaving)
            return
        if me is not None:
            await self.renew_certificate(snap, me)
        if snap.cluster is not None and server.store_key_id:
            await anyio.to_thread.run_sync(self._membership.store_key.follow, server.store_key_id, snap.cluster.unlock_key)
        await self._admission.rewrite_bus(snap)
        if server.cluster and self._leadership.is_leader:
            if await self.remove_peers(snap, server):
                return  # the copies change once JetStream forgot the demoted node's server
            managers = sum(1 for n in snap.nodes.values() if n.role == "manager" and n.routes_at)
            want = max(1, min(MAX_STATE_COPIES, managers))
            try:
                if await self._store.replicas() != want:
                    await self._store.set_replicas(want)
                    log.info("the swarm's state: %d copies across the managers", want)
            except (NatsError, TimeoutError) as exc:  # a new manager's server not in the cluster yet
                log.info("the swarm's state: %d copies not possible yet (%s)", want, exc)

    async def renew_certificate(self, snap: Snapshot, me: NodeRecord) -> None:
        """This manager's certificate, renewed at half its life for the same key (its routes'
        pin stays); every manager signs its own (each reads the CA's key). The files first:
        rewrite_bus then changes the server's cert_digest, and nats-server reloads them."""
        cluster = snap.cluster
        if cluster is None or me.role != "manager" or not me.cert or not me.cert_request or not cluster.ca_key:
            return
        if not swarmca.renewal_due(me.cert) or not self._membership.tls.has_cert():
            return
        cert = await anyio.to_thread.run_sync(swarmca.sign_manager, cluster, me)
        self._membership.tls.write_cert(cert, cluster.ca_cert)
        me.cert, me.updated_at = cert, rfc3339nano()
        await self._store.put(snap, me)  # a Conflict: the next round signs again
        log.info("this manager's certificate renewed, valid until %s", swarmca.expires(cert).isoformat())

    async def step_down(self, snap: Snapshot, me: NodeRecord, server: SwarmServer) -> None:
        """This manager was demoted: it links to the other managers as a worker, and its swarm
        server goes. The link comes first (beside the server), so that from then on its
        engine's heartbeats go over it (failing until the managers know the node's user) and
        never to this orchestrator, which would no longer speak for a worker; then the node's
        user, written while the state is still reachable here; then the server goes."""
        assert snap.cluster is not None
        managers = [n for n in snap.nodes.values() if n.role == "manager" and n.listen and n.id != me.id]
        others = sorted(joined(n.addr, n.port) for n in managers)
        password = secrets.token_hex(24)
        notes = {
            "node_id": me.id, "cluster_id": snap.cluster.id, "addr": me.addr, "listen": me.listen,
            "managers": ",".join(others),
        }  # fmt: skip
        if len(managers) == 1 and server.cluster and managers[0].routes_at:
            # One of two: this server stays until the other serves alone (_await_other_alone).
            notes[SHRINKING] = f"{others[0]} {managers[0].routes_at}"
        link = self._membership.remote(tuple(others), f"node-{me.id}", password)
        self._membership.write(SwarmBus(server=server, remote=link, member=notes))
        me.leaf_password_hash = await anyio.to_thread.run_sync(hash_password, password)
        me.updated_at = rfc3339nano()
        await self._store.put(snap, me)
        if SHRINKING in notes:
            log.info("this node was demoted to worker: it waits for the other manager to serve alone")
            return
        self._membership.stepped_down(link, notes)
        log.info("this node was demoted to worker: it links to the managers (%s)", ", ".join(others))
        await self.sync()  # no longer a manager's state here: at once, not at the next check

    async def _await_other_alone(self, bus: SwarmBus) -> None:
        """One of two managers demoted: its server goes once the other serves alone, which shows
        from here as its swarm port open and its route port closed (twice in a row: a restart
        of the other closes both)."""
        assert bus.remote is not None
        swarm_port, route_port = bus.member[SHRINKING].split()
        if not await anyio.to_thread.run_sync(serves_alone, swarm_port, route_port):
            self._alone_seen = 0
            return
        self._alone_seen += 1
        if self._alone_seen < 2:
            return
        self._alone_seen = 0
        notes = {k: v for k, v in bus.member.items() if k != SHRINKING}
        self._membership.stepped_down(bus.remote, notes)
        log.info("this node was demoted to worker: the other manager serves alone; it links to it (%s)", swarm_port)
        await self.sync()

    async def shrink_to_one(self, snap: Snapshot, me: NodeRecord, server: SwarmServer, leaving: list[NodeRecord]) -> None:
        """The last manager of two: the state moves to a server of its own (Restore into one),
        as JetStream never restarts a cluster of one. The demoted nodes' records leave the
        cluster with it; their servers go once this one serves alone (_await_other_alone)."""
        assert snap.cluster is not None
        store_root = self._membership.server_store
        try:
            # Closed first: a change taken here from now on would be lost with the old bucket.
            entries = await self._store.dump(close=True)
            for node in leaving:
                node.leaving_cluster, node.routes_at = False, ""
                entries[f"node.{node.id}"] = encode(node)
            Restore(self._membership.restore_path).save(entries, 1, into="one")
            await anyio.to_thread.run_sync(partial(shutil.rmtree, store_root / "solo", ignore_errors=True))
        except BaseException:
            Restore(self._membership.restore_path).done()
            self._store.reopen()  # the move did not start
            raise
        nodes = [n for n in snap.nodes.values() if n.id not in {x.id for x in leaving}] + leaving
        alone = manager_server(
            me, snap.cluster, nodes, replace(server, cluster=""), store_root, server.tls_dir, server.store_key_id
        )
        self._membership.write(SwarmBus(server=alone, member=self._membership.read().member))
        log.info("the other manager was demoted: the swarm's state moves to this node's server alone")
        await self.sync()

    async def remove_peers(self, snap: Snapshot, server: SwarmServer) -> bool:
        """The leader: a demoted manager's server out of JetStream's cluster, once the node
        serves as a worker (or is down), so the managers' majority is counted without it, as
        swarmkit removes a demoted manager from its raft. True while any is pending."""
        pending = [n for n in snap.nodes.values() if n.leaving_cluster]
        now = snap.silence_until
        for node in pending:
            if not stepped_down(node, now):
                continue  # still moving to its worker's link: its server keeps the state meanwhile
            if await self._remove_peer(server, node.id):
                node.leaving_cluster, node.routes_at = False, ""
                with contextlib.suppress(Conflict):
                    await self._store.put(snap, node)
                log.info("node %s's server left the managers' JetStream cluster", node.id)
        return bool(pending)

    async def _remove_peer(self, server: SwarmServer, name: str) -> bool:
        if not server.system_password:
            log.warning("swarm server: no system user to remove %s's server from the cluster", name)
            return False
        nc = await connect(
            f"nats://127.0.0.1:{server.client_port}", self._name, connect_deadline=5,
            creds=Credentials(SWARM_SYSTEM_USER, server.system_password),
        )  # fmt: skip
        try:
            msg = await nc.request(REMOVE_PEER, msgspec.json.encode({"peer": name}), timeout=5)
        except (NatsError, TimeoutError) as exc:
            log.info("removing %s's server from the cluster: %s", name, exc)
            return False
        finally:
            await nc.close()
        answer = msgspec.json.decode(msg.data)
        error = answer.get("error") or {}
        # Done, or done before (an answer lost, a leader changed).
        return bool(answer.get("success")) or error.get("err_code") == NOT_A_PEER

    async def _restore(self, server: SwarmServer) -> None:
        """Complete once the cluster's record is in the cluster's bucket: it is written last,
        and until then no manager writes anything (every write first reads that record), so
        putting everything again after an interrupted restore loses nothing."""
        restore = Restore(self._membership.restore_path)
        kept = restore.load()
        if kept is None:
            return
        where = await self._store.bucket_state()
        if where == ("lone" if kept.into == "cluster" else "clustered"):
            return  # the server has not restarted into its new part yet
        try:
            if where == "missing":
                await self._store.create_bucket(kept.replicas)
            if await self._store.get_raw(CLUSTER_KEY) is None:
                for key in sorted(kept.entries, key=lambda k: k == CLUSTER_KEY):
                    await self._store.put_raw(key, kept.entries[key])
                into = f"the managers' cluster {server.cluster}" if kept.into == "cluster" else "this server alone"
                log.info("the swarm's state moved into %s (%d keys)", into, len(kept.entries))
        except (NatsError, TimeoutError) as exc:  # the cluster without a JetStream leader yet
            log.info("the swarm's state waits for its new server (%s)", exc)
            return
        await self._store.use(self._conn or self._local, on_server=True, create=False)
        restore.done()
        if kept.into == "one":  # the old cluster's copy: a new cluster must never find it
            await anyio.to_thread.run_sync(
                partial(shutil.rmtree, self._membership.server_store / "cluster", ignore_errors=True)
            )

    async def run(self) -> None:
        since = 0.0
        while True:
            try:
                await self.sync()
                await self.serve_logs()
                since += CHECK
                if since >= MAINTAIN:
                    since = 0.0
                    await self.maintain()
            except BerthError as exc:  # the server restarting, the state not readable yet
                log.debug("swarm server: %s", exc.message)
            except TimeoutError:
                log.warning("swarm server: not reachable within %.0fs", CONNECT_WITHIN)
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("swarm server: keeping the link failed")
            await anyio.sleep(CHECK)


def stepped_down(node: NodeRecord, now: float) -> bool:
    """Whether a demoted manager's server may leave the managers' cluster: the node links as a
    worker with the password it chose when it stepped down (not the one it still had from
    before a promotion it had not completed: its server is a peer, and it must read its
    demotion there), or it is down, or it never stepped down (a promotion it was never told)."""
    if node.leaf_password_hash and node.leaf_password_hash != node.hash_at_demotion:
        return True
    never = bool(node.leaving_since) and now - node.leaving_since > STEP_DOWN_WITHIN
    return not node_ready(node, now) or never


def serves_alone(swarm_port: str, route_port: str, timeout: float = 2.0) -> bool:
    """Whether a manager serves on its own: its swarm port answers, its route port refuses."""

    def answers(addr: str) -> bool | None:
        host, port = host_port(addr)
        try:
            with socket.create_connection((host.strip("[]"), port), timeout=timeout):
                return True
        except ConnectionRefusedError:
            return False
        except OSError:
            return None  # unreachable: says nothing

    return answers(swarm_port) is True and answers(route_port) is False
