"""Swarm mode's part of the embedded NATS, stdlib only.

The orchestrator decides it and writes it as `<bus-dir>/swarm.json`; the supervisor renders it
(berth_cli.swarmwatch) and has the servers reload it, or restarts them when a reload cannot do.

- A manager of a swarm that spans hosts runs a second nats-server, its **swarm server**, that
  carries swarm traffic only: the swarm's state (JetStream, replicated across the managers when
  there are several, over NATS routes authenticated with the swarm's route credentials), and the
  other nodes' sessions on its swarm port (dockerd's 2377), a NATS leafnode listener. The node's
  own bus never joins a cluster: nothing of one host's services reaches another host's.
- The swarm port admits leaf users of two kinds: one per join token, which may only ask to join,
  and one per node, which may only speak for that node. A leaf user's permissions are the whole
  traffic between the two servers.
- A worker's own nats-server connects to the managers' swarm ports as a leafnode, with its
  node's credentials.
- Both ports speak TLS when the swarm has a CA (berth_orchestrator.swarmca): a manager's server
  presents its certificate on the swarm port and on its routes (mutual TLS between managers,
  each admitting only the current managers' keys); a node's link verifies the manager's
  certificate with the CA it pinned to its join token.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from berth_common.privatefile import write_private

SWARM_BUS_FILE = "swarm.json"
SWARM_BUS_ENV = "BERTH_SWARM_BUS"  # the file's path, given to the orchestrator by `berth up`
# The TLS files in a node's TLS directory: the swarm's CA, a manager's certificate (followed by
# the CA) and its key.
TLS_CA, TLS_CERT, TLS_KEY = "ca.pem", "node.pem", "node-key.pem"
TLS_TIMEOUT = 3  # seconds for a handshake (nats-server's default, 2, is tight on a busy host)


@dataclass(frozen=True)
class LeafUser:
    user: str
    password: str  # a bcrypt hash (node users) or a secret derived from a join token's
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    def __repr__(self) -> str:  # never the password (logs, tracebacks)
        return f"LeafUser(user={self.user!r})"


@dataclass(frozen=True)
class LeafRemote:
    managers: tuple[str, ...]  # HOST:PORT of the managers' swarm ports
    user: str
    password: str
    ca_file: str = ""  # the swarm's CA: the link is TLS, the managers' certificates verified

    def __repr__(self) -> str:
        return f"LeafRemote(managers={self.managers!r}, user={self.user!r})"


@dataclass(frozen=True)
class SwarmServer:
    """A manager's swarm server (see above)."""

    name: str  # server_name: the node's id, unique in the cluster
    client_port: int  # loopback: this node's orchestrator connects here
    client_password: str  # the orchestrator's, the only client user besides the leaf users
    store: str  # JetStream's directory
    listen: str  # HOST:PORT of the swarm port (leafnode listener)
    users: tuple[LeafUser, ...] = ()
    cluster: str = ""  # the cluster's name; "" while this is the only manager (no routes)
    cluster_listen: str = ""  # HOST:PORT for the other managers' routes
    cluster_advertise: str = ""  # HOST:PORT the others reach it at
    routes: tuple[str, ...] = ()  # HOST:PORT of the other managers' route ports
    route_user: str = ""
    route_password: str = ""
    # The system account's user (loopback only): the orchestrator removes a demoted manager's
    # server from JetStream's cluster with it ($JS.API.SERVER.REMOVE is a system request).
    system_password: str = ""
    tls_dir: str = ""  # TLS_CA, TLS_CERT, TLS_KEY: the swarm and route ports speak TLS
    # The managers' keys (sha256 of each certificate's public key, hex): the only peers its
    # routes admit, either way. Empty: any certificate of the CA.
    route_pins: tuple[str, ...] = ()
    # Its certificate's digest: a renewed one (the same files) changes this file, so the
    # supervisor has nats-server reload it.
    cert_digest: str = ""
    # Its store's key (berth_kit.storekey), by id: the store is encrypted ("": a server made
    # before berth encrypted the state).
    store_key_id: str = ""

    def __repr__(self) -> str:  # never a password
        return f"SwarmServer(name={self.name!r}, listen={self.listen!r}, routes={self.routes!r})"

    def restart_needed(self, other: SwarmServer) -> bool:
        """What nats-server cannot reload: its listeners, store and cluster identity."""
        fixed = (
            "name", "client_port", "store", "listen", "cluster", "cluster_listen", "cluster_advertise", "tls_dir",
            "store_key_id",
        )  # fmt: skip
        return any(getattr(self, f) != getattr(other, f) for f in fixed)


@dataclass(frozen=True)
class SwarmBus:
    server: SwarmServer | None = None  # a manager's swarm server (a swarm across hosts)
    remote: LeafRemote | None = None  # a worker's link to the managers
    member: dict[str, str] = field(default_factory=dict)  # the orchestrator's own notes (a worker's node id...)

    @property
    def empty(self) -> bool:
        return self.server is None and self.remote is None


def file_signature(path: Path) -> tuple[int, int, int]:
    """(inode, mtime ns, size): changes whenever write_swarm_bus replaces the file; zeros when
    there is none. Readers re-read the file only when it changed."""
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def read_swarm_bus(path: Path) -> SwarmBus:
    """What the file says; a missing or unreadable file is no swarm (the bus stays local)."""
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
        server = raw.get("server")
        remote = raw.get("remote")
        return SwarmBus(
            server=_server(server) if server else None,
            remote=None
            if not remote
            else LeafRemote(
                tuple(remote["managers"]), str(remote["user"]), str(remote["password"]), str(remote.get("ca_file", ""))
            ),
            member={str(k): str(v) for k, v in (raw.get("member") or {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return SwarmBus()


def _server(raw: dict[str, Any]) -> SwarmServer:
    users = tuple(
        LeafUser(str(u["user"]), str(u["password"]), tuple(u["publish"]), tuple(u["subscribe"]))
        for u in raw.get("users", [])
    )
    return SwarmServer(
        name=str(raw["name"]), client_port=int(raw["client_port"]), client_password=str(raw["client_password"]),
        store=str(raw["store"]), listen=str(raw["listen"]), users=users, cluster=str(raw.get("cluster", "")),
        cluster_listen=str(raw.get("cluster_listen", "")), cluster_advertise=str(raw.get("cluster_advertise", "")),
        routes=tuple(raw.get("routes", ())), route_user=str(raw.get("route_user", "")),
        route_password=str(raw.get("route_password", "")), system_password=str(raw.get("system_password", "")),
        tls_dir=str(raw.get("tls_dir", "")), route_pins=tuple(raw.get("route_pins", ())),
        cert_digest=str(raw.get("cert_digest", "")), store_key_id=str(raw.get("store_key_id", "")),
    )  # fmt: skip


def write_swarm_bus(path: Path, bus: SwarmBus) -> None:
    """Atomically, readable only by its owner (it holds passwords)."""
    doc: dict[str, Any] = {"member": bus.member}
    if bus.server is not None:
        server = asdict(bus.server)
        server["users"] = [asdict(u) for u in bus.server.users]
        doc["server"] = server
    if bus.remote is not None:
        doc["remote"] = {
            "managers": list(bus.remote.managers), "user": bus.remote.user, "password": bus.remote.password,
            "ca_file": bus.remote.ca_file,
        }  # fmt: skip
    write_private(path, json.dumps(doc))


def _quoted(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(s) for s in items) + "]"


def leafnode_settings(bus: SwarmBus) -> tuple[str, ...]:
    """The node's own nats.conf `leafnodes` block: a worker's link to the managers."""
    if bus.remote is None:
        return ()
    r = bus.remote
    urls = tuple(f"nats-leaf://{r.user}:{r.password}@{addr}" for addr in r.managers)
    # The managers' certificates name their addresses: nats-server checks the one it dials.
    tls = f", tls: {{ca_file: {json.dumps(r.ca_file)}, timeout: {TLS_TIMEOUT}}}" if r.ca_file else ""
    return ("leafnodes {", f"  remotes = [{{urls: {_quoted(urls)}{tls}}}]", '  reconnect: "1s"', "}")


def _tls_block(tls_dir: str, mutual: bool, pins: tuple[str, ...] = ()) -> str:
    d = Path(tls_dir)
    verify = f", ca_file: {json.dumps(str(d / TLS_CA))}, verify: true" if mutual else ""
    pinned = f", pinned_certs: {_quoted(pins)}" if pins else ""
    return (
        f"  tls {{cert_file: {json.dumps(str(d / TLS_CERT))}, key_file: {json.dumps(str(d / TLS_KEY))}"
        f"{verify}{pinned}, timeout: {TLS_TIMEOUT}}}"
    )


def _user_entry(user: str, password: str, publish: tuple[str, ...], subscribe: tuple[str, ...]) -> str:
    # An empty allow list would mean "everything" to nats-server: deny all instead.
    pub = f"allow: {_quoted(publish)}" if publish else 'deny: [">"]'
    sub = f"allow: {_quoted(subscribe)}" if subscribe else 'deny: [">"]'
    return (
        f"    {{user: {json.dumps(user)}, password: {json.dumps(password)},"
        f" permissions: {{publish: {{{pub}}}, subscribe: {{{sub}}}}}}}"
    )


SWARM_SERVER_USER = "berth-orchestrator"
SWARM_SYSTEM_USER = "berth-system"


def render_swarm_server(server: SwarmServer, jetstream: tuple[str, ...]) -> str:
    """A manager's swarm server configuration (jetstream: busauth.jetstream_settings' lines)."""
    lines = [
        "# Generated by berth from swarm.json (berth_kit.swarmbus); rewritten at every change.",
        f"server_name: {json.dumps(server.name)}",
        f'listen: "127.0.0.1:{server.client_port}"',
        *jetstream,
    ]
    if server.cluster:
        route = f"{server.route_user}:{server.route_password}"
        lines += [
            "cluster {",
            f"  name: {json.dumps(server.cluster)}",
            f"  listen: {json.dumps(server.cluster_listen)}",
            f"  advertise: {json.dumps(server.cluster_advertise)}",
            f"  authorization {{user: {json.dumps(server.route_user)}, password: {json.dumps(server.route_password)}}}",
            f"  routes: {_quoted(tuple(f'nats-route://{route}@{addr}' for addr in server.routes))}",
            *([_tls_block(server.tls_dir, mutual=True, pins=server.route_pins)] if server.tls_dir else []),
            "}",
        ]
    if server.system_password:
        lines += [
            f"accounts {{ SYS {{ users = [{{user: {json.dumps(SWARM_SYSTEM_USER)}, "
            f"password: {json.dumps(server.system_password)}}}] }} }}",
            "system_account: SYS",
        ]
    lines += [
        "leafnodes {",
        f"  listen: {json.dumps(server.listen)}",
        "  no_advertise: true",
        *([_tls_block(server.tls_dir, mutual=False)] if server.tls_dir else []),
        "}",
        "authorization {",
        "  users = [",
        f"    {{user: {json.dumps(SWARM_SERVER_USER)}, password: {json.dumps(server.client_password)}}}",
        *(_user_entry(u.user, u.password, u.publish, u.subscribe) for u in server.users),
        "  ]",
        "}",
        "",
    ]
    return "\n".join(lines)
