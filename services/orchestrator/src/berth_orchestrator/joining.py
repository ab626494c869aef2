"""Nodes joining and leaving, at both ends of the bus between them (membership.py).

The joining node (`docker swarm join` reaches its own orchestrator):
1. links its NATS to the managers' swarm port with the join user the token opens;
2. sends a NodeJoin with the bcrypt hash of a session password it chose;
3. once admitted, links again as its own node user; its engine's heartbeats then go through
   its orchestrator to the managers (Worker.relay) on its node's session subject.

The manager (Admission) checks the token, records the node, and adds its node user to the bus.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
import uuid

import anyio
from berth_common.engineversion import ENGINE_VERSION
from berth_common.gotime import rfc3339nano
from berth_contracts import subjects
from berth_contracts import swarm as sw
from berth_contracts.base import Done, Ping, Pong
from berth_contracts.errors import BerthError, Conflict, InvalidParameter, Unavailable
from berth_kit.rpc import NoAnswer, RpcClient, request_subject
from berth_kit.swarmbus import SwarmBus

from berth_orchestrator import ids
from berth_orchestrator.dispatcher import Dispatcher
from berth_orchestrator.lease import Leadership
from berth_orchestrator.membership import (
    Membership,
    advertised_host,
    check_password_hash,
    hash_password,
    host_port,
    join_user,
    joined,
    manager_bus,
    parse_token,
)
from berth_orchestrator.records import NodeRecord
from berth_orchestrator.store import Snapshot, SwarmStore

log = logging.getLogger(__name__)

JOIN_WITHIN = 20.0  # the link comes up in about a second; a wrong address or token never does
JOIN_ATTEMPT = 2.0
SESSION_WITHIN = 10.0
RELAY_TIMEOUT = 5.0
MANAGER_JOIN = (
    "joining as a manager is not supported by berth yet: a berth swarm has one manager; "
    "join with the worker token"
)


class Admission:
    """The manager's side: admits nodes, serves their sessions, keeps the bus's users current."""

    def __init__(self, store: SwarmStore, membership: Membership, dispatcher: Dispatcher, leadership: Leadership) -> None:
        self.store = store
        self.membership = membership
        self.dispatcher = dispatcher
        self.leadership = leadership

    def rewrite_bus(self, snap: Snapshot) -> None:
        """The swarm port and its users, from the state: after init, a join, a token rotation,
        a node's removal or departure."""
        if snap.cluster is None:
            return
        listen = next((n.listen for n in snap.nodes.values() if n.role == "manager" and n.listen), "")
        if listen:
            self.membership.write(manager_bus(listen, snap.cluster, snap.nodes.values()))

    async def admit(self, cmd: sw.NodeJoin) -> sw.NodeJoined:
        snap = await self.store.load()
        cluster = snap.cluster
        if cluster is None:
            raise Unavailable("this node is no longer a swarm manager")
        if ids.token_matches(cmd.join_token, cluster.ca_digest, cluster.manager_secret):
            raise Unavailable(MANAGER_JOIN)
        if not ids.token_matches(cmd.join_token, cluster.ca_digest, cluster.worker_secret):
            raise InvalidParameter("invalid join token")
        password_hash = check_password_hash(cmd.password_hash)
        old = snap.node_by_berth_name(cmd.node)
        if old is not None:
            if old.role == "manager" or old.leaf_password_hash:
                raise Conflict(f"a node named {cmd.node} is already part of this swarm")
            await self.store.delete(snap, f"node.{old.id}")  # it left: it comes back as a new node
            snap.nodes.pop(old.id, None)
        stamp = rfc3339nano()
        node = NodeRecord(
            id=ids.new_id(), berth_node=cmd.node, hostname=cmd.hostname, created_at=stamp, updated_at=stamp,
            role="worker", addr=cmd.addr, leaf_password_hash=password_hash, engine_version=cmd.engine_version,
            last_seen=time.time(),
        )  # fmt: skip
        await self.store.put(snap, node)
        await self.store.put_seen(snap, node.id, node.last_seen)
        self.rewrite_bus(snap)
        self.leadership.poke()
        managers = [joined(n.addr, n.port) for n in snap.nodes.values() if n.role == "manager"]
        log.info("node %s (%s) joined the swarm as a worker", node.id, cmd.node)
        return sw.NodeJoined(node_id=node.id, cluster_id=cluster.id, managers=managers)

    async def heartbeat(self, cmd: sw.NodeHeartbeat) -> sw.NodeAssignments:
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
        self.rewrite_bus(snap)
        self.leadership.poke()
        return Done()


def _session_node() -> str:
    """The node whose session subject carried this request: what its credentials allow."""
    return request_subject().rsplit(".", 1)[-1]


class Worker:
    """The joining node's side, and a worker's link to its managers afterwards."""

    def __init__(self, store: SwarmStore, membership: Membership, rpc: RpcClient) -> None:
        self.store = store
        self.membership = membership
        self.rpc = rpc

    async def join(self, cmd: sw.SwarmJoin) -> Done:
        if not self.membership.managed:
            raise Unavailable(
                "joining a swarm needs the NATS server that `berth up` runs (its swarm port); "
                "this berth uses an external one"
            )
        _, secret = parse_token(cmd.join_token)
        if not cmd.remote_addrs:
            raise InvalidParameter("at least 1 RemoteAddr is required to join")
        managers = tuple(joined(*host_port(a)) for a in cmd.remote_addrs)
        password = secrets.token_hex(24)
        request = sw.NodeJoin(
            node=cmd.node, hostname=cmd.hostname, join_token=cmd.join_token, addr=_advertised(cmd),
            password_hash=await anyio.to_thread.run_sync(hash_password, password), engine_version=ENGINE_VERSION,
            idempotency_key=uuid.uuid4().hex,  # asked again after a lost answer: the same answer
        )  # fmt: skip
        self.membership.link(managers, *join_user(secret))
        try:
            answer = await self._ask(request)
        except BaseException:
            self.membership.write(SwarmBus())  # no link: the bus is local again
            raise
        notes = {
            "node_id": answer.node_id,
            "cluster_id": answer.cluster_id,
            "addr": request.addr,
            "managers": ",".join(managers),
        }
        # The addresses this node was given reach the managers from here; the ones the managers
        # advertise may not (a manager that advertises loopback, a NAT).
        self.membership.link(managers, f"node-{answer.node_id}", password, notes)
        await self._session_up(answer.node_id)
        return Done()

    async def _session_up(self, node_id: str) -> None:
        """Wait (a few seconds at most) until the link runs on the node's own credentials, so
        the node is fully in the swarm when `docker swarm join` returns, as with dockerd."""
        with anyio.move_on_after(SESSION_WITHIN):
            while True:
                try:
                    await self.rpc.request(
                        subjects.swarm_node(node_id), Ping(), Pong, timeout=0.5, attempts=1,
                        reply_prefix=subjects.swarm_assigned(node_id),
                    )  # fmt: skip
                    return
                except NoAnswer:
                    await anyio.sleep(0.1)
        log.warning("joined the swarm, but the link to the managers is not up yet")

    async def _ask(self, request: sw.NodeJoin) -> sw.NodeJoined:
        """Until the link is up and a manager answers (an answer may be a refusal)."""
        deadline = time.monotonic() + JOIN_WITHIN
        while True:
            try:
                return await self.rpc.request(
                    subjects.SWARM_JOIN, request, sw.NodeJoined, timeout=JOIN_ATTEMPT, attempts=1,
                    reply_prefix=f"{subjects.SWARM_JOINED}.{uuid.uuid4().hex}",
                )  # fmt: skip
            except NoAnswer:  # the link is not up (yet, or ever: a wrong address or token)
                if time.monotonic() > deadline:
                    raise Unavailable(
                        "Timeout was reached before node joined: no swarm manager answered at "
                        f"{', '.join(self._managers())} (check the address and that the join "
                        "token is current)"
                    ) from None

    def _managers(self) -> list[str]:
        bus = self.membership.read()
        return list(bus.remote.managers) if bus.remote is not None else []

    async def relay(self, cmd: sw.NodeHeartbeat, notes: dict[str, str]) -> sw.NodeAssignments:
        node_id = notes["node_id"]
        return await self.rpc.request(
            subjects.swarm_node(node_id), cmd, sw.NodeAssignments, timeout=RELAY_TIMEOUT, attempts=1,
            reply_prefix=subjects.swarm_assigned(node_id),
        )  # fmt: skip

    async def leave(self, cmd: sw.SwarmLeave, notes: dict[str, str]) -> Done:
        """Tell the managers (best effort: a worker may leave a swarm it cannot reach), then
        drop the link. The engine removes its task containers at its next heartbeat."""
        node_id = notes["node_id"]
        try:
            await self.rpc.request(
                subjects.swarm_node(node_id), sw.NodeLeave(node=cmd.node), Done, timeout=3.0, attempts=1,
                reply_prefix=subjects.swarm_assigned(node_id),
            )  # fmt: skip
        except BerthError as exc:
            log.warning("leaving the swarm: the managers were not told (%s)", exc.message)
        self.membership.write(SwarmBus())
        return Done()


def _advertised(cmd: sw.SwarmJoin) -> str:
    """The address this node shows in `docker node ls`: the one its flags name, else the
    address its route to the manager leaves from."""
    named = advertised_host(cmd.advertise_addr, cmd.listen_addr)
    if named:
        return named
    host, port = host_port(cmd.remote_addrs[0])
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, port))  # UDP: no packet is sent, only a route is chosen
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"
