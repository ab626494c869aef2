"""This node's part of the bus between swarm nodes (berth_kit.swarmbus): what a manager admits
on its swarm port, what a worker links to, and a worker's notes on the swarm it joined.

A manager of a swarm across hosts runs a swarm server (a second nats-server; see
berth_kit.swarmbus). Who may cross to it, as NATS leaf users (their permissions are the whole
traffic):
- a join user per token: derived from the token's secret, so only a holder of the token can
  connect; it may publish a NodeJoin and read the answers to its own token's joins;
- a node user per node: its password chosen by the node (the manager keeps only its bcrypt
  hash); it may publish on its own session subject (and its log streams under it) and read
  its own answers (and log requests) and SWARM_CHANGED.
The managers' swarm servers are routes of one NATS cluster, with credentials kept in the
swarm's state and given to a node that joins with the manager token; a route admits only the
keys of the managers in the state (route_pins). Both ports speak TLS with
the swarm's CA (swarmca): the node's TLS files live beside the bus file, and go when it leaves.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import re
import secrets
import socket
import time
from collections.abc import Iterable
from pathlib import Path

import bcrypt
from berth_contracts import subjects
from berth_contracts.errors import InvalidParameter, Unavailable
from berth_kit.swarmbus import (
    LeafRemote,
    LeafUser,
    SwarmBus,
    SwarmServer,
    file_signature,
    read_swarm_bus,
    write_swarm_bus,
)

from berth_orchestrator.autolock import StoreKey
from berth_orchestrator.records import ClusterRecord, NodeRecord
from berth_orchestrator.swarmca import NodeTLS, key_pin

SWARM_PORT = 2377
MAX_STATE_COPIES = 3  # JetStream replicas of the state: one per manager, three at most (R3)
BCRYPT_ROUNDS = 10  # nats-server checks it once per leaf connection
_BCRYPT = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
_TOKEN = re.compile(r"^SWMTKN-1-([0-9a-z]{50})-([0-9a-z]{25})$")


def parse_token(token: str) -> tuple[str, str]:
    """(ca digest, secret) of a join token; dockerd's words when it is not one."""
    match = _TOKEN.match(token.strip())
    if match is None:
        raise InvalidParameter("invalid join token")
    return match[1], match[2]


def join_user(secret: str) -> tuple[str, str]:
    """The leaf user and password that a token's secret opens (the same on both sides)."""
    digest = hmac.new(secret.encode(), b"berth swarm join", hashlib.sha256).hexdigest()
    return f"join-{digest[:16]}", digest[16:]


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def check_password_hash(value: str) -> str:
    """Only a bcrypt hash goes into nats.conf (nothing a joiner sends may shape the config)."""
    if not _BCRYPT.match(value):
        raise InvalidParameter("invalid node credentials: expected a bcrypt hash")
    return value


def host_port(addr: str, default_port: int = SWARM_PORT) -> tuple[str, int]:
    """HOST[:PORT] (an IPv6 host in brackets) as dockerd reads --listen-addr and RemoteAddrs."""
    host, port = addr, default_port
    if addr.startswith("["):
        host, _, rest = addr[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], addr)
    elif addr.count(":") == 1:
        host, _, raw = addr.partition(":")
        port = _port(raw, addr)
    return host, port


def advertised_host(advertise: str, listen: str) -> str:
    """The host a node shows as its address: --advertise-addr's, else --listen-addr's when it
    names one (not a wildcard); "" when neither does."""
    for addr in (advertise, listen):
        if addr:
            host, _ = host_port(addr)
            if host and host not in ("0.0.0.0", "::"):
                return host
    return ""


def _port(raw: str, addr: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise InvalidParameter(f"invalid port in address {addr!r}")
    return int(raw)


def joined(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_listen(listen: str, wait: float = 3.0) -> None:
    """dockerd's error when the swarm port is taken: checked before nats-server is told to
    listen there (it would fail to start, again and again). A swarm just left still holds the
    port for a moment (nats-server restarts without it): that is waited for."""
    host, port = host_port(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + wait
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host or "0.0.0.0", port))
                return
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise Unavailable(f"listen tcp {listen}: bind: {exc.strerror or exc}") from None
        time.sleep(0.1)


def route_addr(host: str, swarm_port: int) -> str:
    """A manager's route port: the one after its swarm port (2378 beside dockerd's 2377)."""
    return joined(host, swarm_port + 1)


def cluster_name(cluster: ClusterRecord) -> str:
    return f"berth-{cluster.id[:12]}"


def leaf_users(cluster: ClusterRecord, nodes: Iterable[NodeRecord]) -> tuple[LeafUser, ...]:
    """The swarm port's users: one per join token, which reads only its own joins' answers (a
    manager's carries the route credentials), and one per worker (and per worker promoted to
    manager until it serves as one: its session carries the promotion)."""
    users = []
    for secret in (cluster.worker_secret, cluster.manager_secret):
        user, password = join_user(secret)
        users.append(LeafUser(user, password, (subjects.SWARM_JOIN,), (f"{subjects.SWARM_JOINED}.{user}.>",)))
    for node in sorted(nodes, key=lambda n: n.id):
        if node.leaf_password_hash:
            users.append(
                LeafUser(
                    f"node-{node.id}",
                    node.leaf_password_hash,
                    (subjects.swarm_node(node.id), f"{subjects.swarm_node(node.id)}.>"),
                    (subjects.SWARM_CHANGED, f"{subjects.swarm_assigned(node.id)}.>"),
                )
            )
    return tuple(users)


def route_pins(nodes: Iterable[NodeRecord]) -> tuple[str, ...]:
    """The keys the managers' routes admit: the managers' own, and a demoted one's until its
    server has left JetStream's cluster (as its route stays: manager_server)."""
    return tuple(sorted({key_pin(n.cert) for n in nodes if (n.role == "manager" or n.leaving_cluster) and n.cert}))


def manager_server(
    me: NodeRecord,
    cluster: ClusterRecord,
    nodes: Iterable[NodeRecord],
    old: SwarmServer | None,
    store_root: Path,
    tls_dir: str,
    store_key_id: str,
) -> SwarmServer:
    """This manager's swarm server, from the state: its users, and routes to the other
    managers once there are several. Once clustered it stays so (its store is the cluster's).
    tls_dir: its certificate's directory ("" without one: a swarm made before berth had TLS).
    store_key_id: its store's key (autolock.StoreKey.ensure)."""
    nodes = list(nodes)
    # A demoted manager keeps its route until its server left JetStream's cluster.
    others = sorted(
        n.routes_at for n in nodes if (n.role == "manager" or n.leaving_cluster) and n.id != me.id and n.routes_at
    )
    clustered = bool(others) or (old is not None and bool(old.cluster))
    host, port = host_port(me.listen)
    return SwarmServer(
        name=me.id,
        client_port=old.client_port if old is not None else free_loopback_port(),
        client_password=old.client_password if old is not None else secrets.token_urlsafe(32),
        system_password=old.system_password if old is not None and old.system_password else secrets.token_urlsafe(32),
        store=str(store_root / ("cluster" if clustered else "solo")),
        listen=me.listen,
        users=leaf_users(cluster, nodes),
        cluster=cluster_name(cluster) if clustered else "",
        cluster_listen=route_addr(host, port) if clustered else "",
        cluster_advertise=me.routes_at if clustered else "",
        routes=tuple(others),
        route_user=cluster.route_user if clustered else "",
        route_password=cluster.route_password if clustered else "",
        tls_dir=tls_dir,
        route_pins=route_pins(nodes) if clustered and tls_dir else (),
        cert_digest=cert_digest(me.cert) if tls_dir else "",
        store_key_id=store_key_id,
    )


def cert_digest(cert_pem: str) -> str:
    return hashlib.sha256(cert_pem.encode()).hexdigest()[:16] if cert_pem else ""


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_notes(bus: SwarmBus) -> dict[str, str] | None:
    """A worker's notes (node id, cluster id, address, managers), or None if not a worker."""
    if bus.remote is None or not bus.member.get("node_id"):
        return None
    return bus.member


class Membership:
    """The file the supervisor renders into nats.conf; None when berth does not manage its NATS
    (compose, --nats-url): then swarm mode stays on one node."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._read: tuple[tuple[int, int, int], SwarmBus] = ((0, 0, 0), SwarmBus())

    @property
    def managed(self) -> bool:
        return self.path is not None

    def read(self) -> SwarmBus:
        """The file as last written; parsed again only when it changed (every heartbeat and
        the swarm link's check ask)."""
        if self.path is None:
            return SwarmBus()
        signature = file_signature(self.path)
        if signature != self._read[0]:
            self._read = (signature, read_swarm_bus(self.path))
        return self._read[1]

    def write(self, bus: SwarmBus) -> None:
        if self.path is not None:
            write_swarm_bus(self.path, bus)
            if bus.empty:
                self.tls.remove()  # out of the swarm: its keys are kept no longer than needed
            if bus.server is None:
                self.store_key.remove()  # no server, no store: its key goes too

    def stepped_down(self, remote: LeafRemote, notes: dict[str, str]) -> None:
        """A demoted manager's bus: its link to the managers only. Its certificate goes (a
        worker has none); its key stays, named in its signing request should it be promoted."""
        self.write(SwarmBus(remote=remote, member=notes))
        if self.path is not None:
            self.tls.cert.unlink(missing_ok=True)

    def worker(self) -> dict[str, str] | None:
        return worker_notes(self.read())

    @property
    def server_store(self) -> Path:
        """Where a swarm server keeps its JetStream store (beside the bus's other secrets)."""
        assert self.path is not None
        return self.path.parent / "swarm-server"

    @property
    def restore_path(self) -> Path:
        """The state kept across a swarm server's move into a cluster (restore.Restore)."""
        assert self.path is not None
        return self.path.parent / "swarm-restore.json"

    @property
    def store_key(self) -> StoreKey:
        assert self.path is not None
        return StoreKey(self.path.parent)

    @property
    def tls(self) -> NodeTLS:
        assert self.path is not None
        return NodeTLS(self.path.parent / "swarm-tls")

    def server_tls(self) -> str:
        """The directory a manager's swarm server takes its certificate from, if it has one."""
        return str(self.tls.dir) if self.path is not None and self.tls.has_cert() else ""

    def remote(self, managers: tuple[str, ...], user: str, password: str) -> LeafRemote:
        """A link to the managers, verifying their certificates with the CA pinned at join."""
        ca = self.tls.ca
        return LeafRemote(managers, user, password, str(ca) if ca.exists() else "")

    def link(
        self, managers: tuple[str, ...], user: str, password: str, notes: dict[str, str] | None = None,
        server: SwarmServer | None = None,
    ) -> None:  # fmt: skip
        """server: a demoted manager's, kept until the other of two serves alone (swarmlink)."""
        self.write(SwarmBus(server=server, remote=self.remote(managers, user, password), member=notes or {}))
