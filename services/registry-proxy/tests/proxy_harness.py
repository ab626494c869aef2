"""What the `proxy` fixture yields."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from berth_kit.testing import ServiceProcess
from berth_testsupport import registry as tr


@dataclass
class ProxyRun:
    url: str  # http://127.0.0.1:<port>
    front: tr.Front
    seeded: tr.Seeded
    data: Path

    @property
    def host(self) -> str:  # the front as a registry host: <host>/library/busybox
        return f"127.0.0.1:{self.front.port}"


@contextlib.contextmanager
def run_proxy(env: dict[str, str], port: int = 0) -> Iterator[str]:
    """`python -m berth_registry_proxy` on `port` (0: a free one), once it answers Ping and HTTP."""
    port = port or tr.free_port()
    with tempfile.TemporaryDirectory(prefix="berth-proxy-log-") as tmp:
        proxy = ServiceProcess(
            "berth_registry_proxy", "berth-registry-proxy", env["BERTH_NATS_URL"],
            {**env, "BERTH_REGISTRY_PROXY_LISTEN": f"127.0.0.1:{port}"}, Path(tmp) / "proxy.log",
        )  # fmt: skip
        try:
            proxy.start()
            tr.wait_http(f"http://127.0.0.1:{port}/v2/")
            yield f"http://127.0.0.1:{port}"
        finally:
            proxy.stop()
