"""A scratch dockerd (Debian's docker.io 20.10) as a client of the proxy: its own data/exec
roots, unix socket, pidfile and containerd namespace, no bridge nor iptables; removed after."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from berth_testsupport import registry as tr

DOCKERD = shutil.which("dockerd")
DOCKER = shutil.which("docker")


@dataclass
class Dockerd:
    root: Path
    env: dict[str, str]

    def docker(self, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert DOCKER
        return subprocess.run([DOCKER, *args], env=self.env, capture_output=True, timeout=timeout, input=stdin,
                              text=True)

    def log(self) -> str:
        return (self.root / "dockerd.log").read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def scratch_dockerd(*flags: str) -> Iterator[Dockerd]:
    assert DOCKERD and DOCKER
    with tempfile.TemporaryDirectory(prefix="berth-dockerd-") as tmp:
        root = Path(tmp)
        sock = root / "docker.sock"
        args = [
            DOCKERD, "-H", f"unix://{sock}", "--data-root", str(root / "data"),
            "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"),
            "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--containerd-namespace", "berth-test", "--containerd-plugins-namespace", "berth-test-plugins",
            *flags,
        ]
        log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        # DOCKER_CONFIG: `docker login` keeps its credentials here, not in root's ~/.docker.
        env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": str(root / "client")}
        run = Dockerd(root, env)
        try:
            deadline = time.monotonic() + 60
            while run.docker("version", timeout=30).returncode:
                assert proc.poll() is None, run.log()
                assert time.monotonic() < deadline, "dockerd did not come up"
                time.sleep(0.3)
            yield run
        finally:
            tr.stop_process(proc, grace=30)
            log.close()
            subprocess.run(["umount", "-R", str(root / "data")], capture_output=True)
