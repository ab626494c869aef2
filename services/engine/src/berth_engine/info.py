"""GET /info: counts from the records, image count from lifecycle, host facts from the kernel."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import uuid
from functools import lru_cache
from pathlib import Path

from berth_contracts.engine import EngineInfo, SystemInfo
from berth_contracts.errors import BerthError
from berth_contracts.lifecycle import ImageListAll, ImageRecords

from berth_engine import settings
from berth_engine.core import EngineCore


def engine_id(directory: Path) -> str:
    """A stable identity for this engine (Docker's ID), kept next to the records."""
    path = directory / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = str(uuid.uuid4())
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(value)
        os.replace(tmp, path)
        return value


@lru_cache(maxsize=1)
def host_facts() -> tuple[str, str, int, int, str, str]:
    kernel = platform.release()
    os_name = "Linux"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    mem_total = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    cgroup = "2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "1"
    try:
        out = subprocess.run(
            ["runc", "--version"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
        runtime = out.splitlines()[0].removeprefix("runc version ").strip() if out else ""
    except (OSError, subprocess.TimeoutExpired):
        runtime = ""
    return kernel, os_name, os.cpu_count() or 1, mem_total, cgroup, runtime


class InfoService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self._id = engine_id(settings.engine_dir())

    async def info(self, _: SystemInfo) -> EngineInfo:
        records = self.core.store.all()
        running = sum(1 for r in records if r.state.status in ("running", "restarting"))
        paused = sum(1 for r in records if r.state.status == "paused")
        try:
            images = len((await self.core.lifecycle(self.core.node, ImageListAll(), ImageRecords,
                                                     within=10.0, attempts=1)).images)  # fmt: skip
        except BerthError:
            images = 0  # lifecycle down: docker info should still answer
        kernel, os_name, ncpu, mem_total, cgroup, runtime = host_facts()
        return EngineInfo(
            id=self._id,
            name=socket.gethostname(),
            containers=len(records),
            running=running,
            paused=paused,
            stopped=len(records) - running - paused,
            images=images,
            data_root=str(settings.data_root()),
            kernel_version=kernel,
            operating_system=os_name,
            ncpu=ncpu,
            mem_total=mem_total,
            cgroup_version=cgroup,
            runtime_version=runtime,
        )
