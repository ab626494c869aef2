"""Bus credentials: one generated user/password per identity of the permission table, each in
its own file, and the nats-server configuration generated from that table.

Layout of a bus directory (mode 0700; `berth up`: <data-root>/nats, compose: volumes):

    <dir>/nats.conf                 nats-server config: users, passwords, permissions (0600)
    <dir>/<identity>/bus.creds      one identity's credentials, JSON {"user", "password"} (0600)

Credentials are kept across restarts (a service that reconnects keeps working) and created when
missing; the server config is rewritten every time, so a changed table takes effect at once.
`python -m berth_kit.busauth DIR [--owner IDENTITY=UID]... [--line 'key: value']...` writes a
bus directory (the compose init service runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from berth_common.privatefile import write_private
from berth_contracts.buspermissions import PERMISSIONS, BusPermissions

from berth_kit.swarmbus import SwarmBus, leafnode_settings

CREDS_FILE = "bus.creds"
SERVER_CONFIG = "nats.conf"
CREDS_ENV = "BERTH_NATS_CREDS"
# How long a service may take to answer a request it received (allow_responses). Longer than
# any RPC's reply timeout (at most minutes; `docker stop -t` beyond an hour would lose its
# answer), short enough that the server's record of requests never answered stays small (the
# agent's "is the log reader still there?" probes, one per 5 s of an idle `logs -f`).
RESPONSE_WINDOW = "1h"


class CredentialsError(Exception):
    """A credentials file that cannot be read or is not berth's format."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # never print the password (logs, tracebacks)
        return f"Credentials(user={self.user!r})"


def read_credentials(path: Path) -> Credentials:
    try:
        raw = json.loads(path.read_text())
        return Credentials(user=str(raw["user"]), password=str(raw["password"]))
    except OSError as exc:
        raise CredentialsError(f"cannot read NATS credentials {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise CredentialsError(
            f'{path} is not a berth NATS credentials file ({{"user": ..., "password": ...}})'
        ) from None


def creds_path(bus_dir: Path, identity: str) -> Path:
    return bus_dir / identity / CREDS_FILE


def _private_dir(path: Path, owner: int | None = None) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # also an older directory (it held JetStream's store before)
    if owner is not None:
        os.chown(path, owner, -1)


def ensure_credentials(bus_dir: Path, owners: dict[str, int] | None = None) -> dict[str, Credentials]:
    """Every identity's credentials, created where missing or unreadable."""
    owners = owners or {}
    _private_dir(bus_dir)
    out: dict[str, Credentials] = {}
    for identity in PERMISSIONS:
        owner = owners.get(identity)
        _private_dir(bus_dir / identity, owner)
        path = creds_path(bus_dir, identity)
        try:
            creds = read_credentials(path)
            if creds.user != identity:
                raise CredentialsError(f"{path} names {creds.user!r}")
        except CredentialsError:
            creds = Credentials(user=identity, password=secrets.token_urlsafe(32))
            write_private(path, json.dumps({"user": creds.user, "password": creds.password}) + "\n")
        if owner is not None:
            os.chown(path, owner, -1)
        os.chmod(path, 0o600)
        out[identity] = creds
    return out


def jetstream_settings(store_dir: Path, key_env: str = "") -> tuple[str, ...]:
    """The nats.conf lines that turn JetStream on for swarm mode's state (the orchestrator's KV
    bucket; only the orchestrator's identity may use its API). Writes are fsynced before they
    are acknowledged: JetStream's default (a sync every 2 min) could lose a service the user
    created. Small limits: the swarm's state is a few records per node, service and task.
    key_env: the store is encrypted with the key in that environment variable (storekey)."""
    cipher = ("  cipher: chachapoly", f"  key: ${key_env}") if key_env else ()
    return (
        "jetstream {",
        f"  store_dir: {json.dumps(str(store_dir))}",
        "  max_memory_store: 64MB",
        "  max_file_store: 1GB",
        "  sync_interval: always",
        *cipher,
        "}",
    )


def _quoted(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(s) for s in items) + "]"


def _permissions_block(perms: BusPermissions) -> str:
    # An empty allow list would mean "everything" to nats-server: deny all instead.
    publish = f"allow: {_quoted(perms.publish)}" if perms.publish else 'deny: [">"]'
    parts = [f"publish: {{{publish}}}", f"subscribe: {{allow: {_quoted(perms.subscribe)}}}"]
    if perms.allow_responses:
        parts.append(f'allow_responses: {{max: 1, expires: "{RESPONSE_WINDOW}"}}')
    return "{" + ", ".join(parts) + "}"


def render_server_config(
    creds: dict[str, Credentials], settings: tuple[str, ...] = (), swarm: SwarmBus | None = None
) -> str:
    """nats-server configuration: `settings` lines first (ports, JetStream, ...), then one user
    per identity with its permissions. No anonymous access (no_auth_user unset). swarm: a
    worker's link to the managers (swarmbus; a manager's swarm port is its swarm server's)."""
    swarm = swarm or SwarmBus()
    lines = [
        "# Generated by berth from berth_contracts.buspermissions; rewritten at every start.",
        *settings,
        *leafnode_settings(swarm),
        "authorization {",
        "  users = [",
    ]
    for identity, perms in PERMISSIONS.items():
        c = creds[identity]
        lines.append(
            f"    {{user: {json.dumps(c.user)}, password: {json.dumps(c.password)},"
            f" permissions: {_permissions_block(perms)}}}"
        )
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def write_bus_dir(
    bus_dir: Path,
    settings: tuple[str, ...] = (),
    owners: dict[str, int] | None = None,
    swarm: SwarmBus | None = None,
) -> Path:
    """Credentials (kept or created) and a fresh server config; returns the config's path."""
    creds = ensure_credentials(bus_dir, owners)
    config = bus_dir / SERVER_CONFIG
    write_private(config, render_server_config(creds, settings, swarm))
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m berth_kit.busauth", description=__doc__)
    parser.add_argument("dir", type=Path, help="bus directory to write")
    parser.add_argument("--owner", action="append", default=[], metavar="IDENTITY=UID")
    parser.add_argument("--line", action="append", default=[], metavar="SETTING",
                        help="a line put at the top of nats.conf (e.g. 'port: 4222')")
    ns = parser.parse_args(argv)
    owners: dict[str, int] = {}
    for item in ns.owner:
        identity, _, uid = item.partition("=")
        if identity not in PERMISSIONS or not uid.isdigit():
            parser.error(f"--owner {item!r}: expected IDENTITY=UID, IDENTITY one of {list(PERMISSIONS)}")
        owners[identity] = int(uid)
    config = write_bus_dir(ns.dir, tuple(ns.line), owners)
    print(f"wrote {config} and the credentials of {', '.join(PERMISSIONS)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
