"""What the `proxy` fixture yields."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    port = port or tr.free_port()
    full = {**os.environ, **env, "BERTH_REGISTRY_PROXY_LISTEN": f"127.0.0.1:{port}"}
    proc = subprocess.Popen([sys.executable, "-m", "berth_registry_proxy"], env=full)
    try:
        tr.wait_http(f"http://127.0.0.1:{port}/v2/")
        yield f"http://127.0.0.1:{port}"
    finally:
        tr.stop_process(proc)
