"""Legacy links (`--link name:alias`) as dockerd keeps them on the default bridge: the child
resolved at create (HostConfig.Links then reads "/child:/parent/alias"), and at start an
/etc/hosts line and the `<ALIAS>_PORT_*`, `<ALIAS>_NAME`, `<ALIAS>_ENV_*` variables of moby's
daemon/links. On user-defined networks links are endpoint settings (EndpointSettings.Links):
kept, shown, and each alias written to /etc/hosts with the child's address there."""

from __future__ import annotations

from typing import Any

import msgspec
from berth_contracts.agent import TaskSpec
from berth_contracts.errors import BerthError, InternalError, InvalidParameter, NotFound

from berth_engine.containers.records import Record
from berth_engine.containers.store import RecordStore
from berth_engine.containers.taskspec import process_env
from berth_engine.networks.join import CONFLICT_HOST_LINKS, joined_ref
from berth_engine.networks.model import Link

DEFAULT_NETWORK = "bridge"


def parse_link(value: str) -> tuple[str, str]:
    """moby's opts.ParseLink: "name", "name:alias", or the stored "/name:/parent/alias"."""
    if not value:
        raise InvalidParameter("empty string specified for links")
    parts = value.split(":")
    if len(parts) > 2:
        raise InvalidParameter(f"bad format for links: {value}")
    if len(parts) == 1:
        return value, value
    if parts[0].startswith("/"):
        return parts[0][1:], parts[1].rpartition("/")[2]
    return parts[0], parts[1]


def register_links(store: RecordStore, network_mode: str, links: list[str]) -> list[Link]:
    """moby's registerLinks at create: every child must exist (400 otherwise); a child that
    shares another container's namespace is linked through that container."""
    if network_mode not in ("bridge", "default", "", "none"):
        return []  # user-defined networks: the CLI sends links as endpoint settings
    out: list[Link] = []
    for value in links:
        name, alias = parse_link(value)
        try:
            child = store.lookup(name)
        except NotFound as exc:
            raise InvalidParameter(f"could not get container for {name}: {exc.message}") from None
        while ref := joined_ref(child.host_config.network_mode):
            try:
                child = store.lookup(ref)
            except NotFound as exc:
                raise InvalidParameter(
                    f"Could not get container for {ref}: {exc.message}"
                ) from None
        if child.host_config.network_mode == "host":
            raise InvalidParameter(CONFLICT_HOST_LINKS)
        out.append(Link(child_id=child.id, alias=alias))
    return out


def shown_links(store: RecordStore, rec: Record) -> list[str] | None:
    """HostConfig.Links as dockerd shows them: "/child:/parent/alias" with today's names."""
    shown = [
        f"/{child.name}:/{rec.name}/{link.alias}"
        for link in rec.links
        if (child := store.get(link.child_id)) is not None
    ]
    return shown or None


def _port_key(port: str) -> tuple[int, str]:
    number, _, proto = port.partition("/")
    return int(number), (proto or "tcp").lower()


def link_env(name: str, child_ip: str, child_env: list[str], exposed: dict[str, Any]) -> list[str]:
    """moby's Link.ToEnv for the link named `name` ("/parent/alias")."""
    alias = name.rpartition("/")[2].upper().replace("-", "_")
    # tcp first among equal numbers (nat.Sort with moby's comparison)
    ports = sorted(
        (_port_key(p) for p in exposed if p.partition("/")[0].isdigit()),
        key=lambda p: (p[0], p[1] != "tcp"),
    )
    env: list[str] = []
    if ports:
        number, proto = ports[0]
        env.append(f"{alias}_PORT={proto}://{child_ip}:{number}")
    i = 0
    while i < len(ports):
        number, proto = ports[i]
        j = _next_contiguous(ports, number, i)
        if j > i + 1:
            head = f"{alias}_PORT_{number}_{proto.upper()}"
            end_number, end_proto = ports[j]
            env += [
                f"{head}_START={proto}://{child_ip}:{number}",
                f"{head}_ADDR={child_ip}",
                f"{head}_PROTO={proto}",
                f"{head}_PORT_START={number}",
                f"{alias}_PORT_{number}_{end_proto.upper()}_END={end_proto}://{child_ip}:{end_number}",
                f"{alias}_PORT_{number}_{end_proto.upper()}_PORT_END={end_number}",
            ]
            i = j + 1
        else:
            i += 1
    for number, proto in ports:
        head = f"{alias}_PORT_{number}_{proto.upper()}"
        env += [
            f"{head}={proto}://{child_ip}:{number}",
            f"{head}_ADDR={child_ip}",
            f"{head}_PORT={number}",
            f"{head}_PROTO={proto}",
        ]
    env.append(f"{alias}_NAME={name}")
    for entry in child_env:
        key, sep, value = entry.partition("=")
        if sep and key not in ("HOME", "PATH"):
            env.append(f"{alias}_ENV_{key}={value}")
    return env


def _next_contiguous(ports: list[tuple[int, str]], value: int, index: int) -> int:
    if index + 1 == len(ports):
        return index
    for i in range(index + 1, len(ports)):
        if ports[i][0] > value + 1:
            return i - 1
        value += 1
    return len(ports) - 1


def _bridge_ip(rec: Record) -> str:
    return next((e.ip for e in rec.endpoints if e.network_name == DEFAULT_NETWORK), "")


def apply_links(store: RecordStore, rec: Record, spec: TaskSpec) -> TaskSpec:
    """At start: the links' /etc/hosts records (after `--add-host`'s, already in the spec, as
    libnetwork) and environment variables (default bridge), kept on the record for the
    container's execs."""
    hosts: list[str] = []
    env: list[str] = []
    if _bridge_ip(rec):
        for link in rec.links:
            child = store.get(link.child_id)
            if child is None:
                continue  # removed since: dockerd's link index forgets it too
            child_ip = _bridge_ip(child)
            if not child_ip:
                raise InternalError(
                    f"Cannot link to /{child.name}, as it does not belong to the default network"
                )
            name = f"/{rec.name}/{link.alias}"
            if not child.running:
                raise InternalError(
                    f"Cannot link to a non running container: /{child.name} AS {name}"
                )
            names = f"{link.alias} {child.config.hostname}"
            if link.alias != child.name:
                names += f" {child.name}"
            hosts.append(f"{child_ip}\t{names}")
            env += link_env(
                name, child_ip, list(child.config.env or []), child.config.exposed_ports or {}
            )
    for e in rec.endpoints:
        hosts += link_hosts(store, e.network_id, e.links)
    rec.link_env = env  # execs get them too, as in dockerd
    if not hosts and not env:
        return spec
    return msgspec.structs.replace(
        spec, env=process_env(rec, env), extra_hosts=[*spec.extra_hosts, *hosts]
    )


def link_hosts(store: RecordStore, network_id: str, links: list[str]) -> list[str]:
    """Links on a user-defined network: each alias names the child's address there (dockerd
    answers it from its embedded DNS for this container only; /etc/hosts does the same here)."""
    out: list[str] = []
    for value in links:
        name, alias = parse_link(value)
        try:
            child = store.lookup(name)
        except BerthError:
            continue
        ip = next((e.ip for e in child.endpoints if e.network_id == network_id), "")
        if ip and child.running:
            out.append(f"{ip}\t{alias}")
    return out


def remove_link(store: RecordStore, name: str) -> Record:
    """`DELETE /containers/{/parent/alias}?link=1` (moby's rmLink): the parent forgets the link;
    no container is removed. Returns the parent to save."""
    name = name if name.startswith("/") else "/" + name
    parent_name, _, alias = name.rpartition("/")
    if not parent_name:
        store.lookup(name)  # 404 for no container at all
        raise InternalError("Conflict, cannot remove the default link name of the container")
    try:
        parent = store.lookup(parent_name)
    except NotFound:
        raise InternalError(f"Cannot get parent {parent_name} for link name {name}") from None
    kept = [link for link in parent.links if link.alias != alias]
    if len(kept) == len(parent.links):
        raise NotFound(f"No such container: {name}")
    parent.links = kept
    parent.host_config.links = shown_links(store, parent)
    return parent
