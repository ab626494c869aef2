"""What the `proxy` fixture yields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from berth_registry_proxy import testregistry as tr


@dataclass
class ProxyRun:
    url: str  # http://127.0.0.1:<port>
    front: tr.Front
    seeded: tr.Seeded
    data: Path

    @property
    def host(self) -> str:  # the front as a registry host: <host>/library/busybox
        return f"127.0.0.1:{self.front.port}"
