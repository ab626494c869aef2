"""Swarm mode's part of the embedded nats-server configuration, stdlib only.

The orchestrator decides it and writes it as `<bus-dir>/swarm.json`; the supervisor renders it
into nats.conf (berth_kit.busauth) and reloads nats-server, or restarts it when the listener
changed (nats-server cannot reload a leafnode listener).

- A manager listens for the other nodes on its swarm port (dockerd's 2377) as a NATS leafnode
  listener, and admits leaf users of two kinds: one per join token, which may only ask to join,
  and one per node, which may only speak for that node. A leaf user's permissions are the whole
  traffic between the two servers: what it may publish is all that reaches the manager's bus,
  what it may subscribe to is all that reaches the node's. Every other subject stays local.
- A worker connects to its managers as a leafnode with its node's credentials.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SWARM_BUS_FILE = "swarm.json"
SWARM_BUS_ENV = "BERTH_SWARM_BUS"  # the file's path, given to the orchestrator by `berth up`


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

    def __repr__(self) -> str:
        return f"LeafRemote(managers={self.managers!r}, user={self.user!r})"


@dataclass(frozen=True)
class SwarmBus:
    listen: str = ""  # HOST:PORT of this manager's swarm port; "" when not a manager
    users: tuple[LeafUser, ...] = ()
    remote: LeafRemote | None = None  # a worker's link to the managers
    member: dict[str, str] = field(default_factory=dict)  # the orchestrator's own notes (a worker's node id...)

    @property
    def empty(self) -> bool:
        return not self.listen and not self.users and self.remote is None


def read_swarm_bus(path: Path) -> SwarmBus:
    """What the file says; a missing or unreadable file is no swarm (the bus stays local)."""
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
        users = tuple(
            LeafUser(str(u["user"]), str(u["password"]), tuple(u["publish"]), tuple(u["subscribe"]))
            for u in raw.get("users", [])
        )
        remote = raw.get("remote")
        return SwarmBus(
            listen=str(raw.get("listen", "")),
            users=users,
            remote=None
            if not remote
            else LeafRemote(tuple(remote["managers"]), str(remote["user"]), str(remote["password"])),
            member={str(k): str(v) for k, v in (raw.get("member") or {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return SwarmBus()


def write_swarm_bus(path: Path, bus: SwarmBus) -> None:
    """Atomically, readable only by its owner (it holds a worker's session password)."""
    doc: dict[str, Any] = {
        "listen": bus.listen,
        "users": [
            {"user": u.user, "password": u.password, "publish": list(u.publish), "subscribe": list(u.subscribe)}
            for u in bus.users
        ],
        "member": bus.member,
    }
    if bus.remote is not None:
        doc["remote"] = {"managers": list(bus.remote.managers), "user": bus.remote.user, "password": bus.remote.password}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def _quoted(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(s) for s in items) + "]"


def leafnode_settings(bus: SwarmBus) -> tuple[str, ...]:
    """The nats.conf `leafnodes` block: a manager's listener, or a worker's remote."""
    if bus.listen:
        return ("leafnodes {", f"  listen: {json.dumps(bus.listen)}", "  no_advertise: true", "}")
    if bus.remote is not None:
        r = bus.remote
        urls = tuple(f"nats-leaf://{r.user}:{r.password}@{addr}" for addr in r.managers)
        return ("leafnodes {", f"  remotes = [{{urls: {_quoted(urls)}}}]", '  reconnect: "1s"', "}")
    return ()


def user_entries(bus: SwarmBus) -> list[str]:
    """The leaf users, as entries of nats.conf's `authorization.users` list."""
    out = []
    for u in bus.users:
        # An empty allow list would mean "everything" to nats-server: deny all instead.
        publish = f"allow: {_quoted(u.publish)}" if u.publish else 'deny: [">"]'
        subscribe = f"allow: {_quoted(u.subscribe)}" if u.subscribe else 'deny: [">"]'
        out.append(
            f"    {{user: {json.dumps(u.user)}, password: {json.dumps(u.password)},"
            f" permissions: {{publish: {{{publish}}}, subscribe: {{{subscribe}}}}}}}"
        )
    return out
