"""What `docker network create` may ask of a bridge beyond its name: the IPAM pool (Subnet,
IPRange, Gateway, AuxiliaryAddresses) and the driver options netavark can honour. Options it
cannot honour are refused (never kept and ignored); unknown ones are kept, as dockerd keeps them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from berth_contracts.errors import (
    Forbidden,
    InternalError,
    InvalidParameter,
    NotFound,
    NotImplementedByBerth,
)
from berth_contracts.networks import IpamPool, NetworkCreate

from berth_engine.networks.store import NetworkStore

BRIDGE_NAME = "com.docker.network.bridge.name"
MTU = "com.docker.network.driver.mtu"
ICC = "com.docker.network.bridge.enable_icc"
MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass
class BridgeConfig:
    """A new bridge network's settings, checked."""

    subnet: str = ""  # "" = pick a free one
    gateway: str = ""
    ip_range: str = ""
    aux_addresses: dict[str, str] = field(default_factory=dict)
    bridge: str = ""  # "" = br-<id>
    mtu: int = 0
    subnet6: str = ""  # kept (and shown) even without EnableIPv6, as dockerd does
    gateway6: str = ""
    ipv6: bool = False  # EnableIPv6


def _check_gateway_free(gateway: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
    """libnetwork's IPAM reserves a pool's network address (and an IPv4 pool's broadcast one);
    dockerd 20.10 answers a gateway there with a 500 in these words (checked on a scratch one)."""
    if not gateway:
        return
    reserved = {net.network_address}
    if net.version == 4:
        reserved.add(net.broadcast_address)
    if ipaddress.ip_address(gateway) in reserved:
        raise InternalError(f"failed to allocate gateway ({gateway}): Address already in use")


def _as_written(text: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """dockerd keeps and shows an IPv6 pool as written (`fd42:01e1:1::/64`); berth does when it
    is a network address, else its canonical form."""
    try:
        return text if ipaddress.ip_network(text) == net else str(net)
    except ValueError:  # host bits set: only the canonical network is usable
        return str(net)


def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidParameter(f"invalid CIDR address: {text}") from None


def _bool_option(options: dict[str, str], key: str) -> bool:
    value = options.get(key, "true")
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidParameter(
        f'failed to parse {key} value: strconv.ParseBool: parsing "{value}": invalid syntax'
    )


def bridge_config(cmd: NetworkCreate, nets: NetworkStore) -> BridgeConfig:
    if cmd.ipam_driver not in ("", "default"):
        raise NotFound(f'plugin "{cmd.ipam_driver}" not found')  # dockerd 20.10's words
    pools = list(cmd.pools) or (
        [IpamPool(subnet=cmd.subnet, gateway=cmd.gateway)] if cmd.subnet else []
    )
    v4 = [p for p in pools if p.subnet and _net(p.subnet).version == 4]
    v6 = [p for p in pools if p.subnet and _net(p.subnet).version == 6]
    if len(v4) > 1 or len(v6) > 1:
        raise Forbidden("bridge driver doesn't support multiple subnets")
    if cmd.enable_ipv6 and not v6:
        # dockerd 20.10 has no default IPv6 pool either
        raise NotFound(
            "could not find an available, non-overlapping IPv6 address pool among the "
            "defaults to assign to the network"
        )
    if any(not p.subnet and (p.ip_range or p.gateway or p.aux_addresses) for p in pools):
        raise Forbidden("invalid pool request: ip range and gateway need a subnet")
    out = BridgeConfig()
    if v4:
        pool = v4[0]
        subnet = _net(pool.subnet)
        if nets.overlaps(subnet):
            raise Forbidden(
                "invalid pool request: Pool overlaps with other one on this address space"
            )
        if pool.gateway and ipaddress.ip_address(pool.gateway) not in subnet:
            raise InvalidParameter(f"no matching subnet for gateway {pool.gateway}")
        _check_gateway_free(pool.gateway, subnet)
        if pool.ip_range:
            ip_range = _net(pool.ip_range)
            if not ip_range.subnet_of(subnet):  # type: ignore[arg-type]
                raise Forbidden(
                    f"invalid pool request: sub-pool {ip_range} is not within pool {subnet}"
                )
            out.ip_range = str(ip_range)
        for name, address in pool.aux_addresses.items():
            try:
                inside = ipaddress.ip_address(address) in subnet
            except ValueError:
                inside = False
            if not inside:
                raise InvalidParameter(f"no matching subnet for aux-address {address}")
            out.aux_addresses[name] = address
        out.subnet, out.gateway = str(subnet), pool.gateway
    if v6:
        subnet6 = _net(v6[0].subnet)
        if nets.overlaps(subnet6):
            raise Forbidden(
                "invalid pool request: Pool overlaps with other one on this address space"
            )
        gateway6 = v6[0].gateway
        if gateway6 and ipaddress.ip_address(gateway6) not in subnet6:
            raise InvalidParameter(f"no matching subnet for gateway {gateway6}")
        _check_gateway_free(gateway6, subnet6)
        if v6[0].ip_range or v6[0].aux_addresses:
            raise NotImplementedByBerth(
                "berth does not support IPRange or AuxiliaryAddresses in an IPv6 pool yet"
            )
        out.subnet6, out.gateway6, out.ipv6 = _as_written(v6[0].subnet, subnet6), gateway6, cmd.enable_ipv6
    options = dict(cmd.options)
    if not _bool_option(options, ICC) or not _bool_option(options, MASQUERADE):
        raise NotImplementedByBerth(
            f"berth does not support {ICC}=false or {MASQUERADE}=false yet "
            "(netavark 1.4 has no option for them)"
        )
    if MTU in options:
        try:
            out.mtu = int(options[MTU])
        except ValueError:
            raise InvalidParameter(
                f'strconv.Atoi: parsing "{options[MTU]}": invalid syntax'
            ) from None
        if out.mtu < 68 and out.mtu != 0:
            raise InvalidParameter(f"invalid MTU number: {out.mtu}")
    if name := options.get(BRIDGE_NAME, ""):
        if len(name) > 15 or "/" in name or name.strip() != name or not name.isprintable():
            raise InvalidParameter(f"invalid bridge name: {name}")
        if any(n.bridge == name for n in nets.all()):
            raise Forbidden(f"bridge name {name} is already in use by another network")
        out.bridge = name
    return out
