"""dockerd's network controller, as far as berth goes: bridge networks (the default `bridge`
and user-defined ones), addresses, aliases and published ports. The engine decides; the runtime
agent attaches tasks with netavark (TaskSpec.networks / port_mappings)."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

from berth_contracts.docker import (
    EndpointIPAMConfig,
    EndpointSettings,
    HostConfig,
    NetworkingConfig,
    NetworkSettings,
    PortBinding,
)
from berth_contracts.errors import Conflict, InternalError, InvalidParameter, NotFound
from berth_contracts.networks import NetworkAttachment, PortMapping

from berth_engine.containers.records import Record
from berth_engine.containers.store import RecordStore
from berth_engine.networks.model import Endpoint, PublishedPort
from berth_engine.networks.store import NetworkRecord, NetworkStore

# No name rule here: network names are any non-empty string (netapi, as dockerd); container
# names follow NAME_CHARS (naming.validate_name).
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")


def link_local_ips(ips: list[str] | None) -> list[str]:
    """IPAMConfig.LinkLocalIPs: each must be a link-local address (169.254/16, fe80::/10)."""
    out: list[str] = []
    for text in ips or []:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise InvalidParameter(f"invalid link-local IP address: {text}") from None
        if not ip.is_link_local:
            raise InvalidParameter(f"invalid link-local IP address: {text}")
        out.append(str(ip))
    return out


def parse_mac(mac: str) -> str:
    """net.ParseMAC for the 6-byte forms; dockerd's words when it is not one."""
    if not _MAC.match(mac):
        raise InvalidParameter(f"{mac} is not a valid mac address")
    return mac.replace("-", ":").lower()


def _ports_of(hc: HostConfig, exposed: dict[str, Any] | None) -> list[tuple[int, str, str, str]]:
    """(container port, proto, host ip, host port or "") for every binding; -P adds the rest."""
    out: list[tuple[int, str, str, str]] = []
    bound = hc.port_bindings or {}
    for key, bindings in bound.items():
        number, _, proto = key.partition("/")
        for b in bindings or []:
            out.append((int(number), proto or "tcp", b.host_ip, b.host_port.split("-")[0]))
    if hc.publish_all_ports:
        for key in exposed or {}:
            if key in bound or (key.partition("/")[2] == "" and f"{key}/tcp" in bound):
                continue
            number, _, proto = key.partition("/")
            if number.isdigit():
                out.append((int(number), proto or "tcp", "", ""))
    return out


def _probe_port(host_ip: str, port: int, proto: str) -> int:
    """Bind (and release) the host port: 0 picks a free one, as Docker's allocator would."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as exc:
            raise InternalError(
                f"driver failed programming external connectivity: listen {proto}4 "
                f"{host_ip or '0.0.0.0'}:{port}: bind: {exc.strerror.lower() if exc.strerror else exc}"
            ) from None
        return int(s.getsockname()[1])


class NetworkService:
    def __init__(self, nets: NetworkStore, store: RecordStore) -> None:
        self.nets = nets
        self.store = store

    # --- lookups -----------------------------------------------------------------------------
    def lookup(self, ref: str) -> NetworkRecord:
        net = self.nets.lookup(ref)
        if net is None:
            raise NotFound(f"network {ref} not found")
        return net

    def _taken(self, net: NetworkRecord) -> set[str]:
        return {
            ip
            for r in self.store.all()
            for e in r.endpoints
            if e.network_id == net.id
            for ip in (e.ip, e.ip6)
        }

    def _allocate(self, net: NetworkRecord, user_ip: str, v6: bool = False) -> str:
        subnet = ipaddress.ip_network(net.subnet6 if v6 else net.subnet)
        gateway = net.gateway6 if v6 else net.gateway
        taken = self._taken(net) | {gateway} | set(net.aux_addresses.values())
        if user_ip:
            if not net.user_ipam and not v6:  # an IPv6 pool is always the user's
                raise InvalidParameter(
                    "user specified IP address is supported only when connecting to networks "
                    "with user configured subnets"
                )
            if ipaddress.ip_address(user_ip) not in subnet:
                raise InvalidParameter(f"no configured subnet contains IP address {user_ip}")
            if user_ip in taken:
                raise Conflict(f"Address already in use: {user_ip}")
            return user_ip
        # IPAM.Config.IPRange: the pool addresses are taken from (a --ip may lie outside it).
        pool = ipaddress.ip_network(net.ip_range) if net.ip_range and not v6 else subnet
        for host in pool:
            if host in (subnet.network_address, subnet.broadcast_address):
                continue
            if str(host) not in taken:
                return str(host)
        raise InternalError(
            f"no available IPv{6 if v6 else 4} addresses on this network's address pools: {net.name}"
        )

    def new_endpoint(
        self, net: NetworkRecord, settings: EndpointSettings | None, mac: str = ""
    ) -> Endpoint:
        ipam = settings.ipam_config if settings else None
        user_ip = ipam.ipv4_address if ipam else ""
        user_ip6 = ipam.ipv6_address if ipam else ""
        link_local = link_local_ips(ipam.link_local_ips if ipam else None)
        if link_local and not net.dns_enabled:  # the default bridge
            raise InvalidParameter(
                "user specified IP address is supported on user defined networks only"
            )
        if user_ip6 and not net.ipv6:
            raise InvalidParameter(f"no configured subnet contains IP address {user_ip6}")
        mac = (settings.mac_address if settings else "") or mac
        if mac:
            mac = parse_mac(mac)
        aliases = list(settings.aliases or []) if settings else []
        if aliases and not net.dns_enabled:
            raise InvalidParameter(
                "network-scoped alias is supported only for containers in user defined networks"
            )
        return Endpoint(
            network_id=net.id,
            network_name=net.name,
            ip=self._allocate(net, user_ip),
            prefix_len=ipaddress.ip_network(net.subnet).prefixlen,
            gateway=net.gateway,
            aliases=aliases,
            user_ip=user_ip,
            links=list(settings.links or []) if settings else [],
            ip6=self._allocate(net, user_ip6, v6=True) if net.ipv6 else "",
            prefix_len6=ipaddress.ip_network(net.subnet6).prefixlen if net.ipv6 else 0,
            gateway6=net.gateway6 if net.ipv6 else "",
            user_ip6=user_ip6,
            link_local_ips=link_local,
            mac=mac,
            driver_opts=dict(settings.driver_opts or {}) if settings else {},
        )

    # --- containers --------------------------------------------------------------------------
    def validate_mode(self, mode: str) -> None:
        mode = "bridge" if mode in ("", "default") else mode
        if mode in ("host", "none") or mode.startswith("container:"):
            return
        self.lookup(mode)

    def endpoints_for_create(
        self, hc: HostConfig, nc: NetworkingConfig | None, mac: str = ""
    ) -> list[Endpoint]:
        """The endpoints a new container gets; `mac` is the deprecated Config.MacAddress, which
        applies to the primary network."""
        mode = "bridge" if hc.network_mode in ("", "default") else hc.network_mode
        configs = dict((nc.endpoints_config or {}) if nc else {})
        if mode in ("host", "none") or mode.startswith("container:"):
            if configs and mode == "none":
                raise InvalidParameter(
                    "conflicting options: container type network can't be used with links"
                )
            return []
        primary = self.lookup(mode)
        if primary.driver != "bridge":
            return []
        # The CLI names the primary endpoint as it named the mode ("default" included).
        first = [
            configs.pop(k) for k in (mode, primary.id, "default", hc.network_mode) if k in configs
        ]
        out = [self.new_endpoint(primary, first[0] if first else None, mac)]
        for ref, settings in configs.items():  # API ≥ 1.44: several networks at create
            net = self.lookup(ref)
            if net.id != primary.id and net.driver == "bridge":
                out.append(self.new_endpoint(net, settings))
        return out

    @staticmethod
    def attachment(rec: Record, net: NetworkRecord, e: Endpoint) -> NetworkAttachment:
        names = [rec.name, *e.aliases, rec.id[:12]] if net.dns_enabled else []
        return NetworkAttachment(
            name=net.name, id=net.id, bridge=net.bridge, subnet=net.subnet, gateway=net.gateway,
            ip=e.ip, aliases=names, dns_enabled=net.dns_enabled, internal=net.internal,
            mac=e.effective_mac, mtu=net.mtu,
            subnet6=net.subnet6 if e.ip6 else "", gateway6=e.gateway6, ip6=e.ip6,
            link_local_ips=list(e.link_local_ips),
        )  # fmt: skip

    def attach(self, rec: Record) -> tuple[list[NetworkAttachment], list[PortMapping]]:
        """At start: what the agent attaches, with host ports chosen for this run."""
        attachments: list[NetworkAttachment] = []
        for e in rec.endpoints:
            net = self.nets.get(e.network_id)
            if net is None:
                raise NotFound(f"network {e.network_name} not found")
            attachments.append(self.attachment(rec, net, e))
        rec.ports = []
        if not attachments:
            return [], []
        in_use = {
            (p.protocol, p.host_port)
            for other in self.store.all()
            if other.alive and other.id != rec.id
            for p in other.ports
        }
        for number, proto, host_ip, host_port in _ports_of(
            rec.host_config, rec.config.exposed_ports
        ):
            wanted = int(host_port) if host_port and host_port != "0" else 0
            if wanted and (proto, wanted) in in_use:
                raise InternalError(
                    f"driver failed programming external connectivity on endpoint {rec.name} "
                    f"({rec.id}): Bind for {host_ip or '0.0.0.0'}:{wanted} failed: port is already allocated"
                )
            port = _probe_port(host_ip, wanted, proto)
            while (proto, port) in in_use:
                port = _probe_port(host_ip, 0, proto)
            in_use.add((proto, port))
            rec.ports.append(
                PublishedPort(
                    container_port=number, protocol=proto, host_ip=host_ip, host_port=port
                )
            )
        mappings = [
            PortMapping(p.host_ip, p.host_port, p.container_port, p.protocol) for p in rec.ports
        ]
        return attachments, mappings


# --- views (inspect / ps) ---------------------------------------------------------------------


def endpoint_settings(rec: Record, e: Endpoint) -> EndpointSettings:
    running = rec.alive
    return EndpointSettings(
        ipam_config=EndpointIPAMConfig(
            ipv4_address=e.user_ip,
            ipv6_address=e.user_ip6,
            link_local_ips=list(e.link_local_ips) or None,
        )
        if e.user_ip or e.user_ip6 or e.link_local_ips
        else None,
        links=list(e.links) or None,
        aliases=list(e.aliases) or None,
        mac_address=e.effective_mac if running else "",
        driver_opts=dict(e.driver_opts) or None,
        network_id=e.network_id,
        endpoint_id=(e.network_id[:32] + rec.id[:32]) if running else "",
        gateway=e.gateway if running else "",
        ip_address=e.ip if running else "",
        ip_prefix_len=e.prefix_len if running else 0,
        ipv6_gateway=e.gateway6 if running else "",
        global_ipv6_address=e.ip6 if running else "",
        global_ipv6_prefix_len=e.prefix_len6 if running else 0,
        dns_names=[rec.name, *e.aliases, rec.id[:12]]
        if running and e.network_name != "bridge"
        else None,
    )


def port_map(rec: Record) -> dict[str, list[PortBinding] | None]:
    ports: dict[str, list[PortBinding] | None] = {}
    if not rec.alive:
        return ports
    for key in rec.config.exposed_ports or {}:
        ports[key if "/" in key else f"{key}/tcp"] = None
    for p in rec.ports:
        ports.setdefault(f"{p.container_port}/{p.protocol}", None)
        ports[f"{p.container_port}/{p.protocol}"] = [
            *(ports[f"{p.container_port}/{p.protocol}"] or []),
            PortBinding(host_ip=p.host_ip or "0.0.0.0", host_port=str(p.host_port)),
        ]
    return ports


def network_settings(rec: Record) -> NetworkSettings:
    networks: dict[str, EndpointSettings] = {}
    mode = rec.host_config.network_mode
    if mode in ("host", "none"):
        networks[mode] = EndpointSettings()
    for e in rec.endpoints:
        networks[e.network_name] = endpoint_settings(rec, e)
    first = next((e for e in rec.endpoints if e.network_name == "bridge"), None)
    running = rec.alive
    return NetworkSettings(
        ports=port_map(rec),
        sandbox_key=f"/proc/{rec.state.pid}/ns/net" if running and rec.endpoints else "",
        gateway=first.gateway if first and running else "",
        ip_address=first.ip if first and running else "",
        ip_prefix_len=first.prefix_len if first and running else 0,
        mac_address=first.effective_mac if first and running else "",
        ipv6_gateway=first.gateway6 if first and running else "",
        global_ipv6_address=first.ip6 if first and running else "",
        global_ipv6_prefix_len=first.prefix_len6 if first and running else 0,
        networks=networks,
    )
