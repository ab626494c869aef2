"""Network records (one JSON file each under <data-root>/engine/networks, so they survive
restarts) and subnet choice: a /24 of 10.213.0.0/16 (BERTH_NETWORK_POOL), never one a host route covers."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

import msgspec
from berth_common.gotime import rfc3339nano

POOL = ipaddress.IPv4Network(os.environ.get("BERTH_NETWORK_POOL", "10.213.0.0/16"))
PREDEFINED = ("bridge", "host", "none")


class NetworkRecord(msgspec.Struct, kw_only=True):
    id: str
    name: str
    driver: str  # bridge | host | null
    created: str
    subnet: str = ""
    gateway: str = ""
    bridge: str = ""  # host interface
    internal: bool = False
    attachable: bool = False
    dns_enabled: bool = False  # user-defined bridges; Docker's default bridge has no DNS
    user_ipam: bool = False  # --subnet given: --ip is allowed
    ip_range: str = ""  # IPAM IPRange: where addresses are allocated from (--ip may be outside)
    aux_addresses: dict[str, str] = msgspec.field(default_factory=dict)  # never allocated
    mtu: int = 0  # com.docker.network.driver.mtu
    user_gateway: bool = False  # shown in IPAM.Config only when given (or chosen with the subnet)
    subnet6: str = ""  # an IPv6 pool: kept always, used when ipv6 (EnableIPv6)
    gateway6: str = ""
    ipv6: bool = False
    ipam_options: dict[str, str] | None = None  # IPAM.Options ({} for user networks, as dockerd)
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    options: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED


def host_routes() -> list[ipaddress.IPv4Network]:
    """Networks the host already routes (/proc/net/route), so a new bridge never shadows one."""
    out: list[ipaddress.IPv4Network] = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest = ipaddress.IPv4Address(bytes.fromhex(fields[1])[::-1])
        mask = ipaddress.IPv4Address(bytes.fromhex(fields[7])[::-1])
        if int(mask) == 0:
            continue  # the default route overlaps everything
        out.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
    return out


class NetworkStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._nets: dict[str, NetworkRecord] = {}
        for f in root.glob("*.json"):
            rec = msgspec.json.decode(f.read_bytes(), type=NetworkRecord)
            self._nets[rec.id] = rec
        if self.by_name("bridge") is None:
            self.add(self.new_record("bridge", "bridge", subnet=str(self.free_subnet())))
        if self.by_name("host") is None:
            self.add(self.new_record("host", "host"))
        if self.by_name("none") is None:
            self.add(self.new_record("none", "null"))

    def new_record(
        self, name: str, driver: str, subnet: str = "", gateway: str = "", **kw: object
    ) -> NetworkRecord:
        nid = secrets.token_hex(32)
        if driver == "bridge" and subnet and not gateway:
            gateway = str(next(ipaddress.ip_network(subnet).hosts()))
        if kw.get("subnet6") and not kw.get("gateway6"):
            kw["gateway6"] = str(next(ipaddress.ip_network(str(kw["subnet6"])).hosts()))
        return NetworkRecord(
            id=nid,
            name=name,
            driver=driver,
            created=rfc3339nano(),
            subnet=subnet,
            gateway=gateway,
            bridge=str(kw.pop("bridge", "") or (f"br-{nid[:12]}" if driver == "bridge" else "")),
            dns_enabled=driver == "bridge" and name != "bridge",
            **kw,  # type: ignore[arg-type]
        )

    def add(self, rec: NetworkRecord) -> None:
        tmp = self.root / f".{rec.id}.tmp"
        tmp.write_bytes(msgspec.json.encode(rec))
        tmp.rename(self.root / f"{rec.id}.json")
        self._nets[rec.id] = rec

    def remove(self, rec: NetworkRecord) -> None:
        (self.root / f"{rec.id}.json").unlink(missing_ok=True)
        self._nets.pop(rec.id, None)

    def all(self) -> list[NetworkRecord]:
        return sorted(self._nets.values(), key=lambda n: n.created)

    def get(self, nid: str) -> NetworkRecord | None:
        return self._nets.get(nid)

    def by_name(self, name: str) -> NetworkRecord | None:
        return next((n for n in self._nets.values() if n.name == name), None)

    def lookup(self, ref: str) -> NetworkRecord | None:
        """By name, full id, or unique id prefix (Docker's order)."""
        if (rec := self.by_name(ref)) is not None:
            return rec
        if (rec := self._nets.get(ref)) is not None:
            return rec
        matches = [n for n in self._nets.values() if ref and n.id.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def overlaps(self, subnet: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
        return any(
            ipaddress.ip_network(s).overlaps(subnet)  # type: ignore[arg-type]
            for n in self._nets.values()
            for s in (n.subnet, n.subnet6)
            if s and ipaddress.ip_network(s).version == subnet.version
        )

    def free_subnet(self) -> ipaddress.IPv4Network:
        routes = host_routes()
        candidates = list(POOL.subnets(new_prefix=24))
        # A random start: berths on one host (tests, several data roots) pick bridges at the
        # same moment, before either bridge exists as a route to avoid.
        start = secrets.randbelow(len(candidates))
        for candidate in candidates[start:] + candidates[:start]:
            if self.overlaps(candidate) or any(r.overlaps(candidate) for r in routes):
                continue
            return candidate
        raise RuntimeError("no free subnet left in the network pool")
