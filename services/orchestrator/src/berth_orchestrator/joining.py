"""A node joining a swarm and leaving it: this end is the node's (`docker swarm join` reaches
its own orchestrator), the manager's is admission.py. The joining node:
0. fetches the swarm's CA from the manager's swarm port and keeps it only if its digest is the
   token's (swarmca); makes its key, and a certificate request should it be or become a manager;
1. links its NATS to the managers' swarm port with the join user the token opens;
2. sends a NodeJoin with the bcrypt hash of a session password it chose;
3. once admitted as a worker, links again as its own node user; its engine's heartbeats then go
   through its orchestrator to the managers (Worker.relay) on its node's session subject;
   admitted as a manager, it starts its own swarm server with routes to the other managers'
   (the state is then replicated to it) and drops the link.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import time
import uuid

import anyio
from berth_common.engineversion import ENGINE_VERSION
from berth_contracts import subjects
from berth_contracts import swarm as sw
from berth_contracts import swarmnode as sn
from berth_contracts.base import Done, Ping, Pong
from berth_contracts.errors import BerthError, InvalidParameter, Unavailable
from berth_kit.rpc import NoAnswer, RpcClient
from berth_kit.swarmbus import SwarmBus, SwarmServer

from berth_orchestrator import swarmca
from berth_orchestrator.membership import (
    Membership,
    advertised_host,
    cert_digest,
    check_listen,
    free_loopback_port,
    hash_password,
    host_port,
    join_user,
    joined,
    parse_token,
    route_addr,
)
from berth_orchestrator.store import SwarmStore

log = logging.getLogger(__name__)

JOIN_WITHIN = 20.0  # the link comes up in about a second; a wrong address or token never does
JOIN_ATTEMPT = 2.0
SESSION_WITHIN = 10.0
ADMITTED_WITHIN = 8.0  # the other managers pin a new manager's key within a few seconds
RELAY_TIMEOUT = 5.0


class Worker:
    """The joining node's side, and a worker's link to its managers afterwards."""

    def __init__(self, membership: Membership, rpc: RpcClient, store: SwarmStore) -> None:
        self.membership = membership
        self.rpc = rpc
        self.store = store  # pointed at the swarm server once this node serves as a manager
        self._promoted_at = 0.0  # time.monotonic() a promotion was first told, until served
        # One relay at a time: one that the engine gave up on may still be running, and must
        # not act on the node's part after another changed it (a promotion served).
        self._relaying = anyio.Lock()

    async def join(self, cmd: sw.SwarmJoin) -> sw.NodeJoined:
        if not self.membership.managed:
            raise Unavailable(
                "joining a swarm needs the NATS server that `berth up` runs (its swarm port); "
                "this berth uses an external one"
            )
        ca_digest, secret = parse_token(cmd.join_token)
        if not cmd.remote_addrs:
            raise InvalidParameter("at least 1 RemoteAddr is required to join")
        given = tuple(joined(*host_port(a)) for a in cmd.remote_addrs)
        listen_host, port = host_port(cmd.listen_addr or "0.0.0.0:2377")
        listen = joined(listen_host or "0.0.0.0", port)
        # A manager token makes this node a manager: its swarm and route ports must be free.
        for addr in (listen, route_addr(listen_host or "0.0.0.0", port)):
            await anyio.to_thread.run_sync(check_listen, addr)
        password = secrets.token_hex(24)
        addr = _advertised(cmd)
        tls = self.membership.tls
        try:
            tls.write_ca(await anyio.to_thread.run_sync(_remote_ca, given, ca_digest))
            key, cert_request = swarmca.new_key_and_request(
                await anyio.to_thread.run_sync(swarmca.local_names, addr, listen_host)
            )
            tls.write_key(key)
        except BaseException:
            tls.remove()
            raise
        request = sw.NodeJoin(
            node=cmd.node, hostname=cmd.hostname, join_token=cmd.join_token, addr=addr,
            password_hash=await anyio.to_thread.run_sync(hash_password, password), engine_version=ENGINE_VERSION,
            idempotency_key=uuid.uuid4().hex,  # asked again after a lost answer: the same answer
            listen=listen, cert_request=cert_request,
        )  # fmt: skip
        user, user_password = join_user(secret)
        self.membership.link(given, user, user_password)
        try:
            answer = await self._ask(request, user)
        except BaseException:
            self.membership.write(SwarmBus())  # no link: the bus is local again
            raise
        notes = {"node_id": answer.node_id, "cluster_id": answer.cluster_id, "addr": request.addr, "listen": listen}
        if answer.role == "manager":
            if answer.cert:
                self.membership.tls.write_cert(answer.cert, answer.ca_cert)
                await self._until_admitted(answer.routes)
            await self._serve_as_manager(answer.node_id, request.listen, request.addr, answer, notes)
            return answer
        # The addresses this node was given reach the managers from here; the ones the managers
        # advertise may not (a manager that advertises loopback, a NAT): both, given first.
        managers = tuple(dict.fromkeys((*given, *answer.managers)))
        notes["managers"] = ",".join(managers)
        self.membership.link(managers, f"node-{answer.node_id}", password, notes)
        await self._session_up(answer.node_id)
        return answer

    async def _serve_as_manager(
        self, node_id: str, listen: str, addr: str, routes: sw.NodeJoined | sn.NodePromotion, notes: dict[str, str]
    ) -> None:
        """This node's own swarm server, with routes to the other managers' (no more link). Its
        certificate (routes.cert, for the key it made when it joined) is written already."""
        host, port = host_port(listen)
        store, tls_dir = self.membership.server_store / "cluster", self.membership.server_tls()
        shutil.rmtree(store, ignore_errors=True)  # a cluster this node was in before
        # In a thread: it may wait for the key's other users (follow, a durable write).
        store_key_id = await anyio.to_thread.run_sync(self.membership.store_key.ensure)
        server = SwarmServer(
            name=node_id, client_port=free_loopback_port(), client_password=secrets.token_urlsafe(32),
            system_password=secrets.token_urlsafe(32),
            store=str(store), listen=listen, cluster=routes.cluster, cluster_listen=route_addr(host, port),
            cluster_advertise=route_addr(addr, port), routes=tuple(routes.routes),
            route_user=routes.route_user, route_password=routes.route_password,
            tls_dir=tls_dir, route_pins=tuple(routes.route_pins), cert_digest=cert_digest(routes.cert) if tls_dir else "",
            store_key_id=store_key_id,
        )  # fmt: skip
        # Until the link to that server is up, the state is unreadable here, never "no swarm" (a
        # promoted node's engine would remove its tasks).
        self.store.await_server()
        self.membership.write(SwarmBus(server=server, member={k: v for k, v in notes.items() if k != "managers"}))

    async def _admitted(self, routes: list[str]) -> bool:
        """Whether the other managers' routes admit this node's key: each does once it reloaded
        the state's pins (swarmlink, every couple of seconds). A server started before would
        be cut from them, and read no state, until its routes' next tries. A route port that
        does not answer (a lone manager restarting into the cluster, one that is down) is not
        waited for."""
        for route in routes:
            admits = await anyio.to_thread.run_sync(swarmca.route_admits, host_port(route), self.membership.tls, 1.0)
            if admits is False:
                return False
        return True

    async def _until_admitted(self, routes: list[str]) -> None:
        deadline = time.monotonic() + ADMITTED_WITHIN
        while not await self._admitted(routes):
            if time.monotonic() > deadline:
                log.warning("the managers' routes do not admit this node yet: its server starts all the same")
                return
            await anyio.sleep(0.3)

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

    async def _ask(self, request: sw.NodeJoin, user: str) -> sw.NodeJoined:
        """Until the link is up and a manager answers (an answer may be a refusal). The answer
        comes on a subject only this token's join user may read."""
        deadline = time.monotonic() + JOIN_WITHIN
        while True:
            try:
                return await self.rpc.request(
                    subjects.SWARM_JOIN, request, sw.NodeJoined, timeout=JOIN_ATTEMPT, attempts=1,
                    reply_prefix=f"{subjects.SWARM_JOINED}.{user}.{uuid.uuid4().hex}",
                )  # fmt: skip
            except NoAnswer:  # the link is not up (yet, or ever: a wrong secret or address)
                if time.monotonic() > deadline:
                    # The swarm port answered with the token's CA: the link itself was refused.
                    raise Unavailable(
                        "Timeout was reached before node joined: the swarm manager at "
                        f"{', '.join(self._managers())} did not admit this node (check that the join "
                        "token is current, and that the address is one of the manager's own: its "
                        "certificate names only those)"
                    ) from None

    def _managers(self) -> list[str]:
        bus = self.membership.read()
        return list(bus.remote.managers) if bus.remote is not None else []

    async def relay(self, cmd: sn.NodeHeartbeat, notes: dict[str, str]) -> sn.NodeAssignments:
        async with self._relaying:
            if self.membership.worker() != notes:
                raise Unavailable("this node's part in the swarm is changing")
            return await self._relay(cmd, notes)

    async def _relay(self, cmd: sn.NodeHeartbeat, notes: dict[str, str]) -> sn.NodeAssignments:
        node_id = notes["node_id"]
        answer = await self.rpc.request(
            subjects.swarm_node(node_id), cmd, sn.NodeAssignments, timeout=RELAY_TIMEOUT, attempts=1,
            reply_prefix=subjects.swarm_assigned(node_id),
        )  # fmt: skip
        promotion = answer.promotion
        if promotion is None:
            self._promoted_at = 0.0
        elif notes.get("listen"):
            if promotion.cert:
                self.membership.tls.write_cert(promotion.cert, promotion.ca_cert)
                # Not waited for here (no beat would go meanwhile): told again at the next one.
                self._promoted_at = self._promoted_at or time.monotonic()
                if time.monotonic() - self._promoted_at < ADMITTED_WITHIN and not await self._admitted(promotion.routes):
                    return answer
            log.info("this node was promoted to manager: it joins the managers' cluster")
            await self._serve_as_manager(node_id, notes["listen"], notes["addr"], promotion, notes)
            self._promoted_at = 0.0
            return answer
        self._follow_managers(answer.managers, notes)
        return answer

    def _follow_managers(self, managers: list[str], notes: dict[str, str]) -> None:
        """A manager that joined after this worker: linked to as well (the link tries each in
        turn, so the worker outlives the manager it joined through). None is ever dropped: a
        manager away for a while comes back at the same address."""
        known = tuple(a for a in notes.get("managers", "").split(",") if a)
        wanted = tuple(dict.fromkeys((*known, *managers)))
        bus = self.membership.read()
        if wanted == known or bus.remote is None:
            return
        log.info("the swarm's managers: %s", ", ".join(wanted))
        self.membership.link(
            wanted, bus.remote.user, bus.remote.password, {**notes, "managers": ",".join(wanted)}, server=bus.server
        )

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


def _remote_ca(managers: tuple[str, ...], ca_digest: str) -> str:
    """The swarm's CA, from the first of the managers' swarm ports that answers (in a thread)."""
    deadline = time.monotonic() + JOIN_WITHIN
    while True:
        for manager in managers:
            try:
                return swarmca.fetch_remote_ca(host_port(manager), ca_digest, JOIN_ATTEMPT)
            except OSError:  # not up (yet, or ever: a wrong address)
                pass
        if time.monotonic() > deadline:
            raise Unavailable(
                f"Timeout was reached before node joined: no swarm manager answered at {', '.join(managers)} "
                "(check the address)"
            )
        time.sleep(0.5)


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
