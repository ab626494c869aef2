"""/networks: create, list, inspect, remove, connect, disconnect, prune (engine's networks)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from berth_contracts import networks

from berth_gateway.backend import backend
from berth_gateway.bodies import read_json
from berth_gateway.params import qfilters
from berth_gateway.responses import json_response, no_content


class _CreateBody(msgspec.Struct, rename="pascal"):
    name: str = ""
    driver: str = ""
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = msgspec.field(default=False, name="EnableIPv6")
    check_duplicate: bool = True
    ipam: dict[str, Any] | None = msgspec.field(default=None, name="IPAM")
    options: dict[str, str] | None = None
    labels: dict[str, str] | None = None


class _ConnectBody(msgspec.Struct, rename="pascal"):
    container: str = ""
    endpoint_config: dict[str, Any] | None = None
    force: bool = False


async def create(request: web.Request) -> web.Response:
    body = await read_json(request, _CreateBody)
    assert body is not None
    configs = [c or {} for c in (body.ipam or {}).get("Config") or []]
    config = configs[0] if configs else {}
    pools = [
        networks.IpamPool(
            subnet=c.get("Subnet") or "",
            ip_range=c.get("IPRange") or "",
            gateway=c.get("Gateway") or "",
            aux_addresses=dict(c.get("AuxiliaryAddresses") or c.get("AuxAddress") or {}),
        )
        for c in configs
    ]
    reply = await backend(request).call(
        networks.NetworkCreate(
            name=body.name,
            driver=body.driver,
            internal=body.internal,
            attachable=body.attachable,
            subnet=config.get("Subnet") or "",
            gateway=config.get("Gateway") or "",
            pools=pools,
            enable_ipv6=body.enable_ipv6,
            ipam_driver=str((body.ipam or {}).get("Driver") or ""),
            ipam_options=dict((body.ipam or {}).get("Options") or {}),
            labels=body.labels or {},
            options=body.options or {},
        ),
        networks.NetworkCreated,
    )
    return json_response({"Id": reply.id, "Warning": reply.warning}, status=201)


async def list_networks(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        networks.NetworkList(filters=qfilters(request)), networks.NetworkListing
    )
    return json_response(reply.networks)


async def inspect(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        networks.NetworkGet(ref=request.match_info["id"]), networks.NetworkDetail
    )
    return json_response(reply.network)


async def remove(request: web.Request) -> web.Response:
    await backend(request).call(
        networks.NetworkRemove(ref=request.match_info["id"]), networks.NetworkDetail
    )
    return no_content()


async def connect(request: web.Request) -> web.Response:
    body = await read_json(request, _ConnectBody)
    assert body is not None
    ep = body.endpoint_config or {}
    await backend(request).call(
        networks.NetworkConnect(
            ref=request.match_info["id"],
            container=body.container,
            aliases=list(ep.get("Aliases") or []),
            links=list(ep.get("Links") or []),
            mac_address=ep.get("MacAddress") or "",
            driver_opts=dict(ep.get("DriverOpts") or {}),
            ipv4_address=((ep.get("IPAMConfig") or {}).get("IPv4Address") or ""),
            ipv6_address=((ep.get("IPAMConfig") or {}).get("IPv6Address") or ""),
            link_local_ips=list((ep.get("IPAMConfig") or {}).get("LinkLocalIPs") or []),
        ),
        networks.NetworkDetail,
    )
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = await read_json(request, _ConnectBody)
    assert body is not None
    await backend(request).call(
        networks.NetworkDisconnect(
            ref=request.match_info["id"], container=body.container, force=body.force
        ),
        networks.NetworkDetail,
    )
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        networks.NetworkPrune(filters=qfilters(request)), networks.NetworksPruned
    )
    return json_response({"NetworksDeleted": reply.networks_deleted})
