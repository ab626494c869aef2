from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FAKES = "berth-engine=fakesvc.engine,berth-lifecycle=fakesvc.lifecycle,berth-runtime-agent=fakesvc.agent,berth-api-gateway=fakesvc.gateway"


@dataclass
class Roots:
    base: Path
    exec_root: Path
    data_root: Path

    @property
    def sock(self) -> str:
        return f"unix://{self.exec_root}/docker.sock"

    def berth(self, *args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "berth_cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def roots() -> Iterator[Roots]:
    # Short paths: unix socket paths must stay under 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="b-", dir="/tmp"))
    r = Roots(base, base / "x", base / "d")
    try:
        yield r
    finally:
        # Whatever a failing test left running: stop it the normal way.
        if (r.exec_root / "berth.json").exists():
            r.berth("down", "--exec-root", str(r.exec_root), timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fake_env() -> dict[str, str]:
    """Environment that makes the supervisor run the stand-in services from fakesvc/."""
    env = dict(os.environ)
    env["BERTH_SUPERVISE"] = FAKES
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")]))
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return env
