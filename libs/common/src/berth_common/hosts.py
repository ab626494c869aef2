"""Registry hosts: which ones are loopback (dockerd's default insecure registries are
127.0.0.0/8 and ::1, reached over plain HTTP)."""

from __future__ import annotations

import ipaddress


def host_name(host: str) -> str:
    """The name or address of `host[:port]`: `[::1]:5000` → `::1`, `reg.lan:5000` → `reg.lan`,
    a bare IPv6 address as it is."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """`host[:port]` names this machine: localhost, 127.0.0.0/8 or ::1."""
    name = host_name(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
