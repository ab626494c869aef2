"""The /etc/hostname, /etc/hosts and /etc/resolv.conf Docker bind-mounts into every container."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from berth_contracts.agent import TaskSpec

_LOCAL_NS = re.compile(r"^\s*nameserver\s+(127\.\S*|::1)\s*$")


def _resolv_conf(host_net: bool, dns: list[str] | None = None) -> str:
    try:
        text = Path("/etc/resolv.conf").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    if host_net:
        return text
    if dns:
        # aardvark-dns answers container names and forwards the rest to the host's resolvers.
        searches = [ln for ln in text.splitlines() if ln.strip().startswith(("search", "options"))]
        return "".join(f"nameserver {ip}\n" for ip in dns) + "".join(f"{s}\n" for s in searches)
    # Like Docker: a loopback resolver on the host is unreachable from the container's netns.
    lines = [ln for ln in text.splitlines() if not _LOCAL_NS.match(ln)]
    if not any(ln.strip().startswith("nameserver") for ln in lines):
        lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(lines) + "\n"


def _dns_overrides(text: str, spec: TaskSpec) -> str:
    """libnetwork's resolvconf.Build for --dns/--dns-search/--dns-option: each list given
    replaces its kind of line; the file is then search, nameservers, options."""
    if not (spec.dns or spec.dns_search or spec.dns_options):
        return text
    words = [ln.split() for ln in text.splitlines()]
    servers = spec.dns or [w[1] for w in words if len(w) > 1 and w[0] == "nameserver"]
    search = spec.dns_search or next((w[1:] for w in words if w and w[0] == "search"), [])
    options = spec.dns_options or next((w[1:] for w in words if w and w[0] == "options"), [])
    search = [] if search == ["."] else search  # `--dns-search .`: no search domains
    out = [f"search {' '.join(search)}"] if search else []
    out += [f"nameserver {ip}" for ip in servers]
    out += [f"options {' '.join(options)}"] if options else []
    return "\n".join(out) + "\n"


def _hosts(
    hostname: str, host_net: bool, ip: str = "", extra: list[str] | None = None, domain: str = ""
) -> str:
    # The spec's records (--add-host's, then links') after the defaults, then the container's
    # own, in libnetwork's order.
    added = "".join(f"{record}\n" for record in extra or [])
    if host_net:
        try:
            return Path("/etc/hosts").read_text(encoding="utf-8", errors="replace") + added
        except OSError:
            pass
    names = f"{hostname}.{domain}\t{hostname}" if domain else hostname
    return (
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "ff00::0\tip6-mcastprefix\n"
        "ff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
        f"{added}{ip or '127.0.0.1'}\t{names}\n"
    )


def write_etc_files(bundle: Path, container_id: str, spec: TaskSpec) -> dict[str, Path]:
    """Write the files into the bundle; returns container path -> host file to bind-mount."""
    host_net = spec.network_mode == "host"
    # User-defined networks: names resolve through aardvark-dns, listening on each gateway.
    dns = [n.gateway for n in spec.networks if n.dns_enabled]
    hostname = spec.hostname or (socket.gethostname() if host_net else container_id[:12])
    files = {
        "/etc/hostname": (bundle / "hostname", f"{hostname}\n"),
        "/etc/hosts": (
            bundle / "hosts",
            _hosts(
                hostname, host_net, spec.networks[0].ip if spec.networks else "",
                list(spec.extra_hosts), spec.domainname,
            ),  # fmt: skip
        ),
        "/etc/resolv.conf": (
            bundle / "resolv.conf",
            _dns_overrides(_resolv_conf(host_net, dns), spec),
        ),
    }
    out: dict[str, Path] = {}
    for dest, (path, text) in files.items():
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
        out[dest] = path
    return out


def joined_etc_files(joined_bundle: Path) -> dict[str, Path]:
    """The files of the task whose network namespace is joined (`--network container:`)."""
    names = {"/etc/hostname": "hostname", "/etc/hosts": "hosts", "/etc/resolv.conf": "resolv.conf"}
    return {dest: joined_bundle / name for dest, name in names.items() if (joined_bundle / name).exists()}
