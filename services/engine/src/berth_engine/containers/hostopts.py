"""HostConfig options that shape the container's process and namespaces, checked when dockerd
checks them: `--cgroupns`, `--pid`/`--ipc container:` and `--uts host` at create; IPC modes,
device cgroup rules and the donors of joined namespaces at start, with dockerd's words."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import msgspec
from berth_contracts.agent import DeviceMapping, RLimit
from berth_contracts.docker import CreateRequest, HostConfig, Ulimit
from berth_contracts.errors import InternalError, InvalidParameter, NotFound

from berth_engine.containers.records import Record
from berth_engine.containers.store import RecordStore

HOST_GATEWAY = "host-gateway"
CPUSET_ROOT = "/sys/fs/cgroup/cpuset"
IPC_MODES = ("", "private", "shareable", "none", "host")
CGROUPNS_MODES = ("", "host", "private")
# moby's deviceCgroupRuleRegex (daemon/oci_linux.go).
_DEVICE_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


def _joined(mode: str) -> str:
    return mode.partition(":")[2] if mode.startswith("container:") else ""


def _resolve_mode(store: RecordStore, mode: str) -> str:
    """`container:<name|id>` as dockerd stores it: with the donor's full id (400 if unknown)."""
    ref = _joined(mode)
    if not ref:
        return mode
    try:
        return f"container:{store.lookup(ref).id}"
    except NotFound as exc:
        raise InvalidParameter(exc.message) from None


def _check_extra_host(entry: str) -> None:
    """moby's ValidateExtraHost: "name:ip", the ip an address or the word host-gateway."""
    name, sep, ip = entry.partition(":")
    if not sep or not name:
        raise InvalidParameter(f"bad format for add-host: {json.dumps(entry)}")
    if ip != HOST_GATEWAY:
        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            raise InvalidParameter(f"invalid IP address in add-host: {json.dumps(ip)}") from None


def _cpus(spec: str) -> set[int]:
    """A cpuset list ("0-2,4") as numbers; ValueError when malformed."""
    out: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def _check_cpuset(value: str, available_file: str, what: str, flag: str) -> None:
    """moby's verifyPlatformContainerResources for --cpuset-cpus / --cpuset-mems."""
    if not value:
        return
    try:
        wanted = _cpus(value)
    except ValueError:
        raise InvalidParameter(f"Invalid value {value} for {flag}") from None
    try:
        available = Path(CPUSET_ROOT, available_file).read_text().strip()
    except OSError:
        return  # no cpuset controller to compare with: runc decides
    if not wanted <= _cpus(available):
        raise InvalidParameter(
            f"Requested {what} are not available - requested {value}, available: {available}"
        )


def validate_create(req: CreateRequest, store: RecordStore) -> HostConfig:
    """dockerd's create-time checks; returns the HostConfig with joined containers resolved."""
    hc = req.host_config
    if hc.isolation not in ("", "default"):
        raise InternalError(
            f"Invalid isolation: {json.dumps(hc.isolation)} - linux only supports 'default'"
        )
    for entry in hc.extra_hosts or []:
        _check_extra_host(entry)
    _check_cpuset(hc.cpuset_cpus, "cpuset.effective_cpus", "CPUs", "cpuset cpus")
    _check_cpuset(hc.cpuset_mems, "cpuset.effective_mems", "memory nodes", "cpuset mems")
    swappiness = hc.memory_swappiness
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise InvalidParameter(
            f"Invalid value: {swappiness}, valid memory swappiness range is 0-100"
        )
    if hc.cgroupns_mode not in CGROUPNS_MODES:
        raise InvalidParameter(f"invalid cgroup namespace mode: {hc.cgroupns_mode}")
    if hc.uts_mode == "host" and req.hostname:
        raise InvalidParameter("conflicting options: hostname and the UTS mode")
    return msgspec.structs.replace(
        hc, pid_mode=_resolve_mode(store, hc.pid_mode), ipc_mode=_resolve_mode(store, hc.ipc_mode)
    )


def check_start(rec: Record, store: RecordStore) -> None:
    """What dockerd refuses when it builds the spec (500s, as dockerd answers them)."""
    hc = rec.host_config
    ipc_donor = _joined(hc.ipc_mode)
    if ipc_donor:
        prefix = f"can't join IPC of container {ipc_donor}"
        donor = store.get(ipc_donor)
        if donor is None:
            raise NotFound(f"{prefix}: No such container: {ipc_donor}")
        if not donor.running:
            raise InternalError(f"{prefix}: container {donor.id} is not running")
        if donor.host_config.ipc_mode != "shareable":
            raise InternalError(
                f"{prefix}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
            )
    elif hc.ipc_mode not in IPC_MODES:
        raise InternalError(f"Invalid IPC mode: {hc.ipc_mode}")
    pid_donor = _joined(hc.pid_mode)
    if pid_donor:
        donor = store.get(pid_donor)
        if donor is None:
            raise NotFound(f"No such container: {pid_donor}")
        if not donor.running:
            raise InternalError(f"container {donor.id} is not running")
    for rule in hc.device_cgroup_rules or []:
        if not _DEVICE_RULE.match(rule):
            raise InternalError(f"invalid device cgroup rule format: '{rule}'")


def rlimits(ulimits: list[Ulimit] | None, defaults: list[Ulimit]) -> list[RLimit] | None:
    """moby's WithRlimits: the container's ulimits, then the daemon's defaults it did not name.
    None (nothing given anywhere) leaves the agent's default, as dockerd leaves containerd's."""
    given = list(ulimits or [])
    names = {u.name for u in given}
    merged = given + [u for u in defaults if u.name not in names]
    if not merged:
        return None
    return [RLimit(type=f"RLIMIT_{u.name.upper()}", soft=u.soft, hard=u.hard) for u in merged]


def devices(raw: list[dict[str, Any]] | None) -> list[DeviceMapping]:
    return [
        DeviceMapping(
            path_on_host=str(d.get("PathOnHost") or ""),
            path_in_container=str(d.get("PathInContainer") or ""),
            permissions=str(d.get("CgroupPermissions") or ""),
        )
        for d in raw or []
    ]


def pid_mode(hc: HostConfig) -> str:
    """TaskSpec's pid mode: a mode dockerd ignores (an unknown --pid) stays private."""
    return hc.pid_mode if hc.pid_mode == "host" or _joined(hc.pid_mode) else ""


def add_host_records(extra_hosts: list[str], gateway: str) -> list[str]:
    """`--add-host name:ip` as TaskSpec's /etc/hosts records ("IP<TAB>name", in order);
    `host-gateway` is the default bridge's gateway, as dockerd's default host-gateway-ip."""
    out: list[str] = []
    for entry in extra_hosts:
        name, _, ip = entry.partition(":")
        if ip == HOST_GATEWAY:
            if not gateway:
                raise InvalidParameter("unable to derive the IP value for host-gateway")
            ip = gateway
        out.append(f"{ip}\t{name}")
    return out


def check_volume_driver(hc: HostConfig, volume_names: list[str]) -> None:
    """`--volume-driver`: berth has only the local driver; dockerd's answer for a plugin it
    cannot find, for the first volume that would use it."""
    driver = hc.volume_driver
    if driver in ("", "local") or not volume_names:
        return
    raise NotFound(
        f"create {volume_names[0]}: error looking up volume plugin {driver}: "
        f'plugin "{driver}" not found'
    )
