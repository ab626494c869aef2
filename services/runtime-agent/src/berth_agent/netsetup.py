"""Bridge networking from podman's stack: netavark attaches a task's network namespace to its
bridges (veth, IPAM the engine decided, NAT, port forwarding) and runs aardvark-dns for names
and aliases on user-defined networks. Chosen over the CNI plugins because it brings a DNS
server with aliases and per-network isolation, which Docker's user-defined networks need.

The namespace runc made is bind-mounted to <exec-root>/agent/netns/<id>, so teardown still
finds it after the container's processes are gone (and after an agent restart).

Every network keeps its bridge and firewall rules between containers, as Docker's do: netavark
tears a bridge down completely (interface, NAT and forwarding rules: ~160 ms, most of a
`docker run --rm`) when its last container leaves, so the agent enslaves a "keeper", a dummy
interface pair with no address, to each bridge it sets up. It releases a network's keeper on
`docker network rm` (NetworkRelease) and all of them when it stops (the test clean-up does too):
with no container left, a throw-away namespace is attached and detached again, which makes
netavark's own teardown remove the bridge and its rules.

Keepers are also what makes isolation hold. Every network is isolated from the others, the
default bridge included, as in Docker; but netavark 1.4 removes the host-wide
`FORWARD -j NETAVARK_ISOLATION_1` jump whenever an isolated network is torn down completely.
With keepers that happens only on a release, after which the jump is put back by attaching a
throw-away namespace to a network that is still kept, if there is one.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from berth_contracts.agent import TaskSpec
from berth_contracts.errors import InternalError
from berth_contracts.identifiers import validate_identifier
from berth_contracts.networks import NetworkAttachment, PortMapping
from opentelemetry import trace

from berth_agent import netfast

log = logging.getLogger(__name__)
tracer = trace.get_tracer("berth-runtime-agent")


NETAVARK = os.environ.get("BERTH_NETAVARK", "/usr/lib/podman/netavark")
AARDVARK = os.environ.get("BERTH_AARDVARK", "/usr/lib/podman/aardvark-dns")
TIMEOUT = 60.0
# netavark 1.4 edits shared iptables chains without a lock of its own: concurrent setups and
# teardowns (of this agent, or of other berths on the host) race ("No chain/target/match").
LOCK_FILE = os.environ.get("BERTH_NETAVARK_LOCK", "/run/berth-netavark.lock")


@contextlib.contextmanager
def _host_lock(timeout: float = TIMEOUT) -> Iterator[None]:
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InternalError(
                        "netavark: timed out waiting for the host's network lock"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, timeout=TIMEOUT, check=False)
    if res.returncode != 0:
        text = res.stderr.decode(errors="replace").strip()
        raise InternalError(f"ip {' '.join(args)}: {text or f'exit status {res.returncode}'}")


def _isolation_jump_present() -> bool:
    check = ["iptables", "-w", "-C", "FORWARD", "-j", "NETAVARK_ISOLATION_1"]
    return subprocess.run(check, capture_output=True, timeout=TIMEOUT, check=False).returncode == 0


def keeper_name(network_id: str) -> str:
    """The keeper's interface name (15 characters at most)."""
    return f"bk-{network_id[:12]}"


def keeper_peer(network_id: str) -> str:
    return f"bp-{network_id[:12]}"


def network_options(cid: str, name: str, spec: TaskSpec) -> dict[str, Any]:
    """netavark's NetworkOptions (its `setup` / `teardown` stdin)."""
    return _options(cid, name, list(spec.networks), list(spec.port_mappings))


def netavark_name(network_id: str) -> str:
    """The name netavark knows a network by. Not Docker's name: netavark derives firewall chain
    names and aardvark files from it, and every berth on a host has a network called "bridge"."""
    return f"berth-{validate_identifier(network_id, 'network id')[:12]}"


def _options(
    cid: str, name: str, nets: list[NetworkAttachment], ports: list[PortMapping], first: int = 0
) -> dict[str, Any]:
    networks: dict[str, Any] = {}
    info: dict[str, Any] = {}
    for i, net in enumerate(nets, start=first):
        key = netavark_name(net.id)
        networks[key] = {
            "static_ips": [net.ip, *([net.ip6] if net.ip6 else [])],
            "aliases": list(net.aliases),
            "interface_name": f"eth{i}",
            **({"static_mac": net.mac} if net.mac else {}),
        }
        info[key] = {
            "name": key,
            "id": net.id,
            "driver": "bridge",
            "network_interface": net.bridge,
            "subnets": [
                {"subnet": net.subnet, "gateway": net.gateway},
                *([{"subnet": net.subnet6, "gateway": net.gateway6}] if net.ip6 else []),
            ],
            "ipv6_enabled": bool(net.ip6),
            "internal": net.internal,
            "dns_enabled": net.dns_enabled,
            "ipam_options": {"driver": "host-local"},
            # Docker isolates its bridge networks from each other; netavark does when asked
            # (and keepers keep that true: see the module's docstring).
            "options": {"isolate": "true", **({"mtu": str(net.mtu)} if net.mtu else {})},
        }
    return {
        "container_id": cid,
        "container_name": name or cid[:12],
        "networks": networks,
        "network_info": info,
        "port_mappings": [
            {
                "host_ip": p.host_ip,
                "container_port": p.container_port,
                "host_port": p.host_port,
                "range": 1,
                "protocol": p.protocol,
            }
            for p in ports
        ],
    }


def _add_link_local(netns: Path, options: dict[str, Any], nets: list[NetworkAttachment]) -> None:
    """IPAMConfig.LinkLocalIPs: extra addresses on the interface, as libnetwork adds them
    (/16 for IPv4, /64 for IPv6); netavark has no field for them."""
    for net in nets:
        iface = options["networks"][netavark_name(net.id)]["interface_name"]
        for ip in net.link_local_ips:
            prefix = 64 if ":" in ip else 16
            argv = ["nsenter", f"--net={netns}", "ip", "addr", "add", f"{ip}/{prefix}", "dev", iface]
            res = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, check=False)
            if res.returncode != 0:
                text = res.stderr.decode(errors="replace").strip()
                raise InternalError(f"failed to add link-local address {ip}: {text}")


class NetworkSetup:
    def __init__(self, exec_root: Path) -> None:
        self.config_dir = exec_root / "agent" / "netavark"
        self.netns_dir = exec_root / "agent" / "netns"

    def _state(self, cid: str) -> Path:
        return self.netns_dir / f"{validate_identifier(cid, 'container id')}.json"

    def _netns(self, cid: str) -> Path:
        return self.netns_dir / validate_identifier(cid, "container id")

    def _run(self, verb: str, netns: Path, options: dict[str, Any]) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        argv = [NETAVARK, "--config", str(self.config_dir), "--rootless", "false",
                "--aardvark-binary", AARDVARK, verb, str(netns)]  # fmt: skip
        with tracer.start_as_current_span(f"netavark {verb}") as span:
            waited = time.monotonic()
            with _host_lock():
                span.set_attribute("berth.lock_wait_ms", (time.monotonic() - waited) * 1000)
                res = subprocess.run(
                    argv, input=json.dumps(options).encode(), capture_output=True,
                    timeout=TIMEOUT, check=False,
                )  # fmt: skip
        if res.returncode != 0:
            # netavark reports its error as JSON on stdout ({"error": ...}), logs on stderr.
            text = (res.stdout + res.stderr).decode(errors="replace").strip()
            raise InternalError(f"netavark {verb}: {text or f'exit status {res.returncode}'}")

    def netns_path(self, cid: str) -> Path:
        """Where a task's network namespace is bound (what its config.json names to join)."""
        return self._netns(cid)

    def quick(self, cid: str, spec: TaskSpec) -> bool:
        """Whether setup will likely attach through netlink (two stat calls per network)."""
        return netfast.eligible(network_options(cid, spec.hostname, spec), self._kept)

    def setup(self, cid: str, spec: TaskSpec, name: str) -> None:
        """Make the task's namespace here, before runc, and attach it: runc then joins it, so
        netavark's work overlaps the shim's spawn and `runc create` instead of following them.
        runc brings up the loopback only of a namespace it makes itself, so it is done here."""
        self.netns_dir.mkdir(parents=True, exist_ok=True)
        netns = self._netns(cid)
        if not os.path.ismount(netns):
            netns.touch()
            with tracer.start_as_current_span("netns.new"):
                argv = ["unshare", f"--net={netns}", "ip", "link", "set", "lo", "up"]
                res = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, check=False)
            if res.returncode != 0:
                text = res.stderr.decode(errors="replace").strip()
                raise InternalError(f"network namespace of {cid[:12]}: {text}")
        options = network_options(cid, name, spec)
        # Saved before setup: a half-done setup is torn down from this too.
        self._state(cid).write_text(json.dumps(options))
        if netfast.eligible(options, self._kept) and _isolation_jump_present():
            with tracer.start_as_current_span("netlink setup"):
                try:
                    netfast.attach(netns, options)
                except OSError as exc:  # what rtnl raises, with the kernel's errno
                    raise InternalError(f"network setup of {cid[:12]}: {exc}") from exc
        else:
            self._run("setup", netns, options)
        _add_link_local(netns, options, list(spec.networks))
        self._keep_all(options)

    # --- keepers -------------------------------------------------------------------------------
    def _keep_all(self, options: dict[str, Any]) -> None:
        for info in options["network_info"].values():
            try:
                self._keep(info)
            except (InternalError, OSError, subprocess.SubprocessError) as exc:
                # The bridge is rebuilt when it next empties and refills (slower), and its
                # teardown may drop the isolation jump until the next setup.
                log.warning("no keeper for network %s: %s", info["name"], exc)

    def _keepers(self) -> Path:
        return self.config_dir / "keepers"

    def _keep(self, info: dict[str, Any]) -> None:
        """Enslave a dummy interface to the bridge (once): netavark then never sees it empty."""
        keeper, bridge = keeper_name(info["id"]), info["network_interface"]
        record = self._keepers() / f"{info['name']}.json"
        if self._kept(info):
            return  # the common case: two stat calls
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(info))  # before the link: release finds a half-made one
        if not os.path.exists(f"/sys/class/net/{keeper}"):
            # A veth pair, not a dummy: every kernel that runs containers has veth (the dummy
            # driver is a module some kernels lack). Deleting one end deletes both.
            _ip("link", "add", keeper, "type", "veth", "peer", "name", keeper_peer(info["id"]))
        _ip("link", "set", keeper, "master", bridge)

    def _kept(self, info: dict[str, Any]) -> bool:
        """Whether the network's keeper is in place: its bridge and rules then stay."""
        master = os.path.realpath(f"/sys/class/net/{keeper_name(info['id'])}/master")
        record = self._keepers() / f"{info['name']}.json"
        return record.exists() and os.path.basename(master) == info["network_interface"]

    def release_keepers(self) -> list[str]:
        """Remove every keeper; a bridge left without ports is torn down by netavark itself."""
        released = []
        for record in sorted(self._keepers().glob("*.json")):
            self._release(record)
            released.append(record.stem)
        return released

    def release_network(self, network_id: str) -> bool:
        """`docker network rm`: release that network's keeper (its bridge and rules go with the
        last container), then put back the isolation jump for the networks still kept."""
        record = self._keepers() / f"{netavark_name(network_id)}.json"
        if not record.exists():
            return False
        self._release(record)
        remaining = sorted(self._keepers().glob("*.json"))
        if remaining and not _isolation_jump_present():
            try:
                self._attach_and_detach(json.loads(remaining[0].read_text()))
            except (InternalError, OSError, ValueError, KeyError) as exc:
                log.warning("restoring network isolation: %s", exc)
        return True

    def _release(self, record: Path) -> None:
        try:
            info = json.loads(record.read_text())
            with contextlib.suppress(InternalError):
                _ip("link", "del", keeper_name(info["id"]))
            bridge = info["network_interface"]
            if os.path.exists(f"/sys/class/net/{bridge}") and not os.listdir(
                f"/sys/class/net/{bridge}/brif"
            ):
                self._attach_and_detach(info)  # the last detach is a complete teardown
        except (InternalError, OSError, ValueError, KeyError) as exc:
            log.warning("releasing the keeper of %s: %s", record.stem, exc)
        record.unlink(missing_ok=True)

    def _attach_and_detach(self, info: dict[str, Any]) -> None:
        """Attach a throw-away namespace to the network and detach it. On a bridge with nothing
        else attached, the detach removes the bridge and the network's firewall rules
        (netavark's own complete teardown); on a kept one, the attach (re)creates what netavark
        sets up once per network, such as the isolation jump, and the detach leaves it."""
        ns = f"berth-release-{os.getpid()}"
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True, timeout=TIMEOUT)
        _ip("netns", "add", ns)
        try:
            netns = Path("/run/netns") / ns
            # One address per subnet (IPv4, IPv6) that no container holds: the last but one.
            addresses = [
                str(ipaddress.ip_network(s["subnet"], strict=False).broadcast_address - 1)
                for s in info["subnets"]
            ]
            key = info["name"]
            options = {
                "container_id": "0" * 64,
                "container_name": ns,
                "networks": {
                    key: {"static_ips": addresses, "aliases": [], "interface_name": "eth0"}
                },
                "network_info": {key: info},
                "port_mappings": [],
            }
            self._run("setup", netns, options)
            self._run("teardown", netns, options)
        finally:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True, timeout=TIMEOUT)

    def _bind_netns(self, cid: str, pid: int) -> Path:
        self.netns_dir.mkdir(parents=True, exist_ok=True)
        netns = self._netns(cid)
        if not os.path.ismount(netns):
            netns.touch()
            subprocess.run(
                ["mount", "--bind", f"/proc/{pid}/ns/net", str(netns)], check=True,
                timeout=TIMEOUT, capture_output=True,
            )  # fmt: skip
        return netns

    def connect(self, cid: str, pid: int, nets: list[NetworkAttachment], name: str) -> None:
        """Attach a running task to more networks (`docker network connect`)."""
        netns = self._bind_netns(cid, pid)
        state_file = self._state(cid)
        state = json.loads(state_file.read_text()) if state_file.exists() else None
        used = len(state["networks"]) if state else 0
        add = [n for n in nets if not state or netavark_name(n.id) not in state["networks"]]
        if not add:
            return
        options = _options(cid, name, add, [], first=used)
        self._run("setup", netns, options)
        _add_link_local(netns, options, add)
        self._keep_all(options)
        if state is None:
            state = options
        else:
            state["networks"].update(options["networks"])
            state["network_info"].update(options["network_info"])
        state_file.write_text(json.dumps(state))

    def disconnect(self, cid: str, network_ids: list[str]) -> None:
        """Detach a running task from networks (`docker network disconnect`)."""
        names = [netavark_name(i) for i in network_ids]
        state_file = self._state(cid)
        if not state_file.exists():
            return
        state = json.loads(state_file.read_text())
        gone = [n for n in names if n in state["networks"]]
        if not gone:
            return
        options = {
            **state,
            "networks": {n: state["networks"][n] for n in gone},
            "network_info": {n: state["network_info"][n] for n in gone},
            "port_mappings": [],
        }
        self._run("teardown", self._netns(cid), options)
        for n in gone:
            state["networks"].pop(n)
            state["network_info"].pop(n)
        state_file.write_text(json.dumps(state))

    def attached(self, cid: str) -> bool:
        """Whether the task has a network attachment to tear down."""
        return self._state(cid).exists()

    def teardown(self, cid: str) -> None:
        """Undo setup (idempotent; nothing to do for a task without networks)."""
        state, netns = self._state(cid), self._netns(cid)
        if state.exists():
            try:
                options = json.loads(state.read_text())
                if netfast.eligible(options, self._kept):
                    with tracer.start_as_current_span("netlink teardown"):
                        netfast.detach(netns, options)
                else:
                    self._run("teardown", netns, options)
            except (InternalError, OSError, ValueError, subprocess.SubprocessError) as exc:
                log.warning("network teardown of %s: %s", cid[:12], exc)
            state.unlink(missing_ok=True)
        if netns.exists():
            subprocess.run(
                ["umount", str(netns)], check=False, timeout=TIMEOUT, capture_output=True
            )
            with contextlib.suppress(OSError):
                netns.unlink()
