"""A real dockerd (20.10, Debian's docker.io) with the proxy in `registry-mirrors` pulls a Docker
Hub name through it; the proxy's Docker Hub upstream is the local registry (via the Front)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from berth_registry_proxy import testregistry as tr
from proxy_harness import ProxyRun

DOCKERD = shutil.which("dockerd")
DOCKER = shutil.which("docker")

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(DOCKERD is None or DOCKER is None, reason="dockerd not installed (apt docker.io)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="dockerd needs root"),
]


def test_dockerd_pulls_docker_hub_name_through_the_proxy(proxy: ProxyRun) -> None:
    assert DOCKERD and DOCKER
    with tempfile.TemporaryDirectory(prefix="berth-dockerd-") as tmp:
        root = Path(tmp)
        sock = root / "docker.sock"
        args = [
            DOCKERD, "-H", f"unix://{sock}", "--data-root", str(root / "data"),
            "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"),
            "--iptables=false", "--ip6tables=false", "--bridge=none", "--registry-mirror", proxy.url,
            "--containerd-namespace", "berth-test", "--containerd-plugins-namespace", "berth-test-plugins",
        ]
        log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
        try:
            deadline = time.monotonic() + 60
            while subprocess.run([DOCKER, "version"], env=env, capture_output=True, timeout=30).returncode:
                assert proc.poll() is None, (root / "dockerd.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "dockerd did not come up"
                time.sleep(0.3)
            mirrors = json.loads(
                subprocess.run([DOCKER, "info", "--format", "{{json .RegistryConfig.Mirrors}}"], env=env,
                               capture_output=True, text=True, timeout=30).stdout
            )
            assert mirrors == [proxy.url + "/"]
            res = subprocess.run([DOCKER, "pull", "busybox:1"], env=env, capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stderr + (root / "dockerd.log").read_text()[-3000:]
            assert f"Digest: {proxy.seeded.busybox.digest}" in res.stdout
            image_id = subprocess.run(
                [DOCKER, "image", "inspect", "--format", "{{.Id}}", "busybox:1"], env=env,
                capture_output=True, text=True, timeout=30,
            ).stdout.strip()
            assert image_id == proxy.seeded.busybox.image_id
            # It came through the proxy: the upstream saw the proxy fetch the layer once.
            assert proxy.front.blob_gets(proxy.seeded.busybox.layer_digests[0]) == 1
        finally:
            tr.stop_process(proc, grace=30)
            log.close()
            subprocess.run(["umount", "-R", str(root / "data")], capture_output=True)
