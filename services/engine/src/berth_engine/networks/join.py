"""`--network container:<name|id>` (compose's `network_mode: service:x`): a container that joins
another's network namespace, as dockerd does it. At create the options that need a namespace of
one's own are refused with moby's words and the target is resolved to its full id when it
exists; at start the target must be running, and the joiner takes its hostname and its
/etc/hostname, /etc/hosts and /etc/resolv.conf (the agent bind-mounts the target's files)."""

from __future__ import annotations

import msgspec
from berth_contracts.docker import CreateRequest
from berth_contracts.errors import Conflict, InternalError, InvalidParameter, NotFound

from berth_engine.containers.records import Record
from berth_engine.containers.store import RecordStore

PREFIX = "container:"

# moby's runconfig errors (validateNetMode), all 400.
CONFLICT_LINKS = (
    "conflicting options: container type network can't be used with links. "
    "This would result in undefined behavior"
)
CONFLICT_HOST_LINKS = (
    "conflicting options: host type networking can't be used with links. "
    "This would result in undefined behavior"
)
CONFLICT_HOSTNAME = "conflicting options: hostname and the network mode"
CONFLICT_DNS = "conflicting options: dns and the network mode"
CONFLICT_HOSTS = "conflicting options: custom host-to-IP mapping and the network mode"
CONFLICT_MAC = "conflicting options: mac-address and the network mode"
CONFLICT_PUBLISH = "conflicting options: port publishing and the container type network mode"
CONFLICT_EXPOSE = "conflicting options: port exposing and the container type network mode"


def joined_ref(mode: str) -> str:
    """The container named by a `container:<name|id>` mode, "" for any other mode."""
    return mode[len(PREFIX) :] if mode.startswith(PREFIX) else ""


def check_network_mode(req: CreateRequest) -> None:
    """moby's validateNetMode, run (as dockerd does) before anything else is looked at."""
    hc = req.host_config
    mode = hc.network_mode
    if mode == "host" and hc.links:
        raise InvalidParameter(CONFLICT_HOST_LINKS)
    if not mode.startswith(PREFIX):
        return
    if not joined_ref(mode):
        raise InvalidParameter("Invalid network mode: invalid container format container:<name|id>")
    endpoints = (req.networking_config.endpoints_config or {}) if req.networking_config else {}
    mac = req.mac_address or any(e.mac_address for e in endpoints.values())
    for refused, message in (
        (req.hostname, CONFLICT_HOSTNAME),
        (hc.links or any(e.links for e in endpoints.values()), CONFLICT_LINKS),
        (hc.dns, CONFLICT_DNS),
        (hc.extra_hosts, CONFLICT_HOSTS),
        (mac, CONFLICT_MAC),
        (hc.port_bindings or hc.publish_all_ports, CONFLICT_PUBLISH),
        (req.exposed_ports, CONFLICT_EXPOSE),
    ):
        if refused:
            raise InvalidParameter(message)
    if any(e.aliases for e in endpoints.values()):
        raise InvalidParameter(
            "network-scoped alias is supported only for containers in user defined networks"
        )
    if any(e.ipam_config for e in endpoints.values()):
        raise InvalidParameter(
            "user specified IP address is supported on user defined networks only"
        )


def resolve_at_create(store: RecordStore, mode: str) -> str:
    """dockerd stores `container:<full id>` when the target exists at create; a missing one is
    kept as given and refused at start (404)."""
    ref = joined_ref(mode)
    if not ref:
        return mode
    try:
        return PREFIX + store.lookup(ref).id
    except NotFound:
        return mode


def joined_container(store: RecordStore, rec: Record) -> Record | None:
    """At start: the running container whose namespace `rec` joins (moby's
    getNetworkedContainer, same words and kinds), or None for another mode."""
    ref = joined_ref(rec.host_config.network_mode)
    if not ref:
        return None
    target = store.lookup(ref)  # NotFound: "No such container: <ref>"
    if target.id == rec.id:
        raise InternalError("cannot join own network")
    if target.state.status == "restarting":
        raise Conflict(f"Container {ref} is restarting, wait until the container is running")
    if not target.running:
        raise Conflict(f"cannot join network of a non running container: {ref}")
    if target.node != rec.node:
        raise Conflict(f"cannot join network of a container on another node: {ref}")
    return target


def join(rec: Record, target: Record) -> None:
    """The joiner shows the target's hostname and domain name (dockerd copies them at start)."""
    rec.config = msgspec.structs.replace(
        rec.config, hostname=target.config.hostname, domainname=target.config.domainname
    )
