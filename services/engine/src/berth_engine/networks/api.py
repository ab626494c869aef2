"""`docker network create/ls/inspect/rm/connect/disconnect/prune` with dockerd's words."""

from __future__ import annotations

import logging

import anyio
from berth_contracts.base import Done
from berth_contracts.docker import EndpointIPAMConfig, EndpointSettings
from berth_contracts.errors import (
    BerthError,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
)
from berth_contracts.networks import (
    Network,
    NetworkConnect,
    NetworkCreate,
    NetworkCreated,
    NetworkDetail,
    NetworkDisconnect,
    NetworkGet,
    NetworkList,
    NetworkListing,
    NetworkPrune,
    NetworkRelease,
    NetworkRemove,
    NetworksPruned,
    TaskNetworkUpdate,
)

from berth_engine.containers.listing import label_matches
from berth_engine.core import EngineCore
from berth_engine.networks.controller import NetworkService
from berth_engine.networks.links import link_hosts
from berth_engine.networks.options import bridge_config
from berth_engine.networks.store import NetworkRecord

log = logging.getLogger(__name__)

_FILTERS = ("name", "id", "driver", "label", "type", "scope", "dangling")


class NetworkApi:
    def __init__(self, core: EngineCore, svc: NetworkService) -> None:
        self.core = core
        self.svc = svc

    def _users(self, net: NetworkRecord, running_only: bool) -> list[str]:
        return [
            r.id
            for r in self.core.store.all()
            if (r.alive or not running_only)
            and (
                any(e.network_id == net.id for e in r.endpoints)
                or r.host_config.network_mode in (net.name, net.id)
            )
        ]

    def view(self, net: NetworkRecord) -> Network:
        containers: dict[str, dict[str, str]] = {}
        for r in self.core.store.all():
            for e in r.endpoints:
                if e.network_id == net.id and r.alive:
                    containers[r.id] = {
                        "Name": r.name,
                        "EndpointID": e.network_id[:32] + r.id[:32],
                        "MacAddress": e.effective_mac,
                        "IPv4Address": f"{e.ip}/{e.prefix_len}",
                        "IPv6Address": f"{e.ip6}/{e.prefix_len6}" if e.ip6 else "",
                    }
        ipam_config: list[dict[str, object]] = []
        if net.subnet:
            pool: dict[str, object] = {"Subnet": net.subnet}
            if net.ip_range:
                pool["IPRange"] = net.ip_range
            if net.user_gateway or not net.user_ipam:
                pool["Gateway"] = net.gateway
            if net.aux_addresses:
                pool["AuxiliaryAddresses"] = dict(net.aux_addresses)
            ipam_config.append(pool)
        if net.subnet6:
            ipam_config.append({"Subnet": net.subnet6})
        return Network(
            name=net.name,
            id=net.id,
            created=net.created,
            driver=net.driver,
            enable_ipv6=net.ipv6,
            ipam={"Driver": "default", "Options": net.ipam_options, "Config": ipam_config},
            internal=net.internal,
            attachable=net.attachable,
            containers=containers,
            options=dict(net.options),
            labels=dict(net.labels),
        )

    async def create(self, cmd: NetworkCreate) -> NetworkCreated:
        if not cmd.name:  # dockerd takes any other name (spaces included)
            raise InvalidParameter(f"invalid name {cmd.name!r} for a network")
        if cmd.name in ("bridge", "host", "none"):
            raise Forbidden(f"{cmd.name} is a pre-defined network and cannot be created")
        if self.svc.nets.by_name(cmd.name) is not None:
            raise Conflict(f"network with name {cmd.name} already exists")
        if cmd.driver not in ("", "bridge"):
            raise NotFound(
                f"could not find plugin {cmd.driver} in v1 plugin registry: plugin not found"
            )
        config = bridge_config(cmd, self.svc.nets)
        rec = self.svc.nets.new_record(
            cmd.name,
            "bridge",
            subnet=config.subnet or str(self.svc.nets.free_subnet()),
            gateway=config.gateway,
            internal=cmd.internal,
            attachable=cmd.attachable,
            user_ipam=bool(config.subnet),
            user_gateway=bool(config.gateway) or not config.subnet,
            subnet6=config.subnet6,
            gateway6=config.gateway6,
            ipv6=config.ipv6,
            ipam_options=dict(cmd.ipam_options),
            ip_range=config.ip_range,
            aux_addresses=config.aux_addresses,
            bridge=config.bridge,
            mtu=config.mtu,
            labels=dict(cmd.labels),
            options=dict(cmd.options),
        )
        await anyio.to_thread.run_sync(self.svc.nets.add, rec)
        return NetworkCreated(id=rec.id)

    async def get(self, cmd: NetworkGet) -> NetworkDetail:
        return NetworkDetail(network=self.view(self.svc.lookup(cmd.ref)))

    async def list_networks(self, cmd: NetworkList) -> NetworkListing:
        for key in cmd.filters:
            if key not in _FILTERS:
                raise InvalidParameter(f"invalid filter '{key}'")
        f = cmd.filters
        out: list[Network] = []
        for net in self.svc.nets.all():
            if (names := f.get("name")) and not any(n in net.name for n in names):
                continue
            if (ids := f.get("id")) and not any(net.id.startswith(i) for i in ids):
                continue
            if (drivers := f.get("driver")) and net.driver not in drivers:
                continue
            if (wanted := f.get("label")) and not label_matches(net.labels, wanted):
                continue
            if (types := f.get("type")) and (
                "builtin" if net.predefined else "custom"
            ) not in types:
                continue
            if "dangling" in f and (f["dangling"] in (["true"], ["1"])) == bool(
                net.predefined or self._users(net, running_only=False)
            ):
                continue
            out.append(self.view(net))
        return NetworkListing(networks=out)

    async def remove(self, cmd: NetworkRemove) -> NetworkDetail:
        net = self.svc.lookup(cmd.ref)
        if net.predefined:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        if self._users(net, running_only=True):
            raise Forbidden(
                f"error while removing network: network {net.name} id {net.id} has active endpoints"
            )
        await anyio.to_thread.run_sync(self.svc.nets.remove, net)
        await self._release_on_agents(net)
        return NetworkDetail(network=self.view(net))

    async def _release_on_agents(self, net: NetworkRecord) -> None:
        """The agents keep a network's bridge up between containers: tell them it is gone. An
        agent that does not answer keeps it until it stops (a bridge, no endpoint)."""
        nodes = {self.core.node, *(rec.node for rec in self.core.store.all())}
        for node in sorted(nodes):
            try:
                await self.core.agent(node, NetworkRelease(network_id=net.id), Done, attempts=1)
            except BerthError as exc:
                log.warning("network %s: release on %s: %s", net.name, node, exc.message)

    async def connect(self, cmd: NetworkConnect) -> NetworkDetail:
        net = self.svc.lookup(cmd.ref)
        rec = self.core.store.lookup(cmd.container)
        async with self.core.lock(rec.id):
            if net.driver != "bridge":
                raise Forbidden(
                    "container cannot be disconnected from host network or connected to host network"
                )
            if rec.host_config.network_mode in (
                "host",
                "none",
            ) or rec.host_config.network_mode.startswith("container:"):
                raise Forbidden(
                    "container sharing network namespace with another container or host cannot be connected to any other network"
                )
            if any(e.network_id == net.id for e in rec.endpoints):
                raise Forbidden(
                    f"endpoint with name {rec.name} already exists in network {net.name}"
                )
            settings = EndpointSettings(
                mac_address=cmd.mac_address,
                driver_opts=cmd.driver_opts or None,
                links=cmd.links or None,
                aliases=cmd.aliases or None,
                ipam_config=EndpointIPAMConfig(
                    ipv4_address=cmd.ipv4_address,
                    ipv6_address=cmd.ipv6_address,
                    link_local_ips=cmd.link_local_ips or None,
                )
                if cmd.ipv4_address or cmd.ipv6_address or cmd.link_local_ips
                else None,
            )
            endpoint = self.svc.new_endpoint(net, settings)
            if rec.alive:
                # Hot-plug: the agent runs netavark on the running task's namespace.
                await self.core.agent(
                    rec.node,
                    TaskNetworkUpdate(
                        container_id=rec.id,
                        connect=[self.svc.attachment(rec, net, endpoint)],
                        add_hosts=link_hosts(self.core.store, net.id, cmd.links),
                    ),
                    Done,
                )
            rec.endpoints.append(endpoint)
            await self.core.store.save(rec)
        return NetworkDetail(network=self.view(net))

    async def disconnect(self, cmd: NetworkDisconnect) -> NetworkDetail:
        net = self.svc.lookup(cmd.ref)
        rec = self.core.store.lookup(cmd.container)
        async with self.core.lock(rec.id):
            if not any(e.network_id == net.id for e in rec.endpoints):
                raise Forbidden(f"container {rec.id} is not connected to network {net.name}")
            if rec.alive:
                await self.core.agent(
                    rec.node, TaskNetworkUpdate(container_id=rec.id, disconnect=[net.id]), Done
                )
            rec.endpoints = [e for e in rec.endpoints if e.network_id != net.id]
            await self.core.store.save(rec)
        return NetworkDetail(network=self.view(net))

    async def prune(self, cmd: NetworkPrune) -> NetworksPruned:
        deleted: list[str] = []
        for net in self.svc.nets.all():
            if net.predefined or self._users(net, running_only=False):
                continue
            if (wanted := cmd.filters.get("label")) and not label_matches(net.labels, wanted):
                continue
            await anyio.to_thread.run_sync(self.svc.nets.remove, net)
            await self._release_on_agents(net)
            deleted.append(net.name)
        return NetworksPruned(networks_deleted=deleted)
