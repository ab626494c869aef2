"""The proxy's configuration: environment variables (flags of `python -m` override them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from berth_common.hosts import is_loopback

DOCKER_HUB = "docker.io"
DOCKER_HUB_URL = "https://registry-1.docker.io"
MiB = 1 << 20


def _pairs(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.strip().partition("=")
        if sep and key and value:
            out[key.strip()] = value.strip()
    return out


def _allowed(raw: str) -> frozenset[str] | None:
    if raw.strip() == "*":
        return None
    return frozenset(h.strip().lower() for h in raw.split(",") if h.strip())


@dataclass(frozen=True)
class ProxyConfig:
    listen: str = "127.0.0.1:5000"
    data_dir: Path = Path("/var/lib/berth/registry-proxy")
    docker_hub_url: str = DOCKER_HUB_URL
    # host → base URL of the registry serving it (e.g. "ghcr.io=https://ghcr.io")
    upstreams: dict[str, str] = field(default_factory=dict)
    insecure: frozenset[str] = frozenset()  # hosts reachable over plain HTTP besides 127.0.0.0/8
    # host → "user:password": sent only to that host (and its token realm), never elsewhere
    credentials: dict[str, str] = field(default_factory=dict)
    tag_ttl: float = 60.0  # seconds a tag's digest is served without asking upstream again
    max_manifest: int = 4 * MiB
    max_blob: int = 16 * 1024 * MiB
    quota: int = 0  # bytes of blobs kept; 0 = no limit
    connect_timeout: float = 10.0
    read_timeout: float = 120.0  # seconds without a byte from an upstream before it is given up
    # hosts reachable besides Docker Hub and `upstreams`; None = any host that passes the grammar
    allowed_hosts: frozenset[str] | None = None
    max_upstream_connections: int = 32  # open to all upstreams at once (more requests wait)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ProxyConfig:
        e = os.environ if env is None else env
        data_root = Path(e.get("BERTH_DATA_ROOT", "/var/lib/berth"))
        return cls(
            listen=e.get("BERTH_REGISTRY_PROXY_LISTEN", "127.0.0.1:5000"),
            data_dir=Path(e.get("BERTH_REGISTRY_PROXY_DATA", str(data_root / "registry-proxy"))),
            docker_hub_url=e.get("BERTH_REGISTRY_PROXY_DOCKER_HUB", DOCKER_HUB_URL).rstrip("/"),
            upstreams={k.lower(): v.rstrip("/") for k, v in _pairs(e.get("BERTH_REGISTRY_PROXY_UPSTREAMS", "")).items()},
            insecure=frozenset(
                h.strip().lower() for h in e.get("BERTH_REGISTRY_PROXY_INSECURE", "").split(",") if h.strip()
            ),
            credentials={k.lower(): v for k, v in _pairs(e.get("BERTH_REGISTRY_PROXY_CREDENTIALS", "")).items()},
            tag_ttl=float(e.get("BERTH_REGISTRY_PROXY_TAG_TTL", "60")),
            max_manifest=int(e.get("BERTH_REGISTRY_PROXY_MAX_MANIFEST", str(4 * MiB))),
            max_blob=int(e.get("BERTH_REGISTRY_PROXY_MAX_BLOB", str(16 * 1024 * MiB))),
            quota=int(e.get("BERTH_REGISTRY_PROXY_QUOTA", "0")),
            connect_timeout=float(e.get("BERTH_REGISTRY_PROXY_CONNECT_TIMEOUT", "10")),
            read_timeout=float(e.get("BERTH_REGISTRY_PROXY_READ_TIMEOUT", "120")),
            allowed_hosts=_allowed(e.get("BERTH_REGISTRY_PROXY_ALLOWED_HOSTS", "*")),
            max_upstream_connections=int(e.get("BERTH_REGISTRY_PROXY_MAX_CONNECTIONS", "32")),
        )

    def may_reach(self, host: str) -> bool:
        """Docker Hub, a configured upstream, or (unless restricted) any host."""
        if host == DOCKER_HUB or host in self.upstreams:
            return True
        return self.allowed_hosts is None or host in self.allowed_hosts

    def base_url(self, host: str) -> str:
        """The upstream URL serving `host`; plain HTTP only for loopback or configured hosts."""
        if host == DOCKER_HUB:
            return self.docker_hub_url
        if host in self.upstreams:
            return self.upstreams[host]
        scheme = "http" if is_loopback(host) or host in self.insecure else "https"
        return f"{scheme}://{host}"
