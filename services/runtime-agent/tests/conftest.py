"""Fixtures: a real nats-server, a busybox rootfs, and the agent as a real subprocess."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from berth_kit.testing import ServiceProcess, nats_server

# Helpers shared by the test modules (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))
from agent_testlib import Client, client  # noqa: E402

BUSYBOX = "/bin/busybox"

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
wheel:x:10:root
staff:x:50:user
user:x:1000:
nogroup:x:65534:
"""


def _require_root_and_runc() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not shutil.which("runc"):
        pytest.skip("needs runc")
    if not os.path.exists(BUSYBOX):
        pytest.skip("needs a static /bin/busybox")


@pytest.fixture(scope="session")
def busybox_template() -> Iterator[Path]:
    _require_root_and_runc()
    root = Path(tempfile.mkdtemp(prefix="berth-bb-"))
    root.chmod(0o755)  # mkdtemp makes it 0700: non-root users in the container could not get in
    (root / "bin").mkdir()
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, check=True, text=True).stdout
    for name in applets.split():
        if name != "busybox":
            with contextlib.suppress(FileExistsError):
                (root / "bin" / name).symlink_to("busybox")
    for d in ("etc", "proc", "sys", "dev", "tmp", "root", "home/user", "usr/bin", "usr/sbin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def rootfs(busybox_template: Path) -> Iterator[Path]:
    """A fresh copy of the busybox rootfs for one test."""
    dest = Path(tempfile.mkdtemp(prefix="berth-rootfs-"))
    shutil.copytree(busybox_template, dest, symlinks=True, dirs_exist_ok=True)
    yield dest
    shutil.rmtree(dest, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    with nats_server() as url:
        yield url


class AgentProcess(ServiceProcess):
    """`python -m berth_agent` as a real subprocess (its log beside its roots). Started without
    waiting: several agents share the bus, and Client.wait_ready asks this node itself."""

    def __init__(self, nats_url: str, node: str, data_root: Path, exec_root: Path) -> None:
        env = {
            "BERTH_NODE": node,
            "BERTH_DATA_ROOT": str(data_root),
            "BERTH_EXEC_ROOT": str(exec_root),
            "BERTH_LOG_LEVEL": "INFO",
        }
        log_path = exec_root.parent / f"agent-{node}.log"
        super().__init__("berth_agent", "berth-runtime-agent", nats_url, env, log_path)
        self.node = node
        self.data_root = data_root
        self.exec_root = exec_root

    def start(self, *, wait: bool = False, within: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        super().start(wait=wait, within=within)

    def kill9(self) -> None:
        """SIGKILL the agent and its zygote (as a crash would); shims must survive."""
        assert self.proc is not None
        zygotes = _children(self.proc.pid)
        self.stop(signal.SIGKILL, within=10)
        for pid in zygotes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM, within: float = 20.0) -> int | None:
        return super().stop(sig, within)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@pytest.fixture
def agent(nats_url: str) -> Iterator[AgentProcess]:
    _require_root_and_runc()
    top = Path(tempfile.mkdtemp(prefix="berth-ra-", dir="/tmp"))
    proc = AgentProcess(nats_url, f"t{uuid.uuid4().hex[:8]}", top / "data", top / "exec")
    proc.start()
    yield proc
    proc.stop()
    _cleanup_leftovers(top / "exec")
    shutil.rmtree(top, ignore_errors=True)


def _cleanup_leftovers(exec_root: Path) -> None:
    """Kill containers and shims a failed test may have left behind."""
    runc_root = exec_root / "runc"
    tasks = exec_root / "agent" / "tasks"
    if tasks.is_dir():
        for bundle in tasks.iterdir():
            subprocess.run(
                ["runc", "--root", str(runc_root), "delete", "--force", bundle.name],
                capture_output=True,
                check=False,
            )
            state = bundle / "state.json"
            with contextlib.suppress(Exception):
                import json

                shim_pid = int(json.loads(state.read_text()).get("shim_pid", 0))
                if shim_pid:
                    os.kill(shim_pid, signal.SIGKILL)
            subprocess.run(
                ["umount", "-l", str(bundle / "rootfs")], capture_output=True, check=False
            )


@pytest.fixture
async def c(agent: AgentProcess, nats_url: str) -> AsyncIterator[Client]:
    """A bus client of the test's agent, once the agent answers (async tests)."""
    async with client(nats_url, agent.node) as bus:
        yield bus
