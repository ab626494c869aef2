"""docker top / update / stats with the real CLI (and the stats JSON through docker-py)."""

from __future__ import annotations

import docker
import pytest
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_top_update_stats(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("run", "-d", busybox_image, "sleep", "313").strip()
    try:
        top = berth.docker_ok("top", cid).splitlines()
        assert top[0].split()[:3] == ["UID", "PID", "PPID"]
        assert any(line.endswith("sleep 313") for line in top[1:]), top
        assert "sleep 313" in berth.docker_ok("top", cid, "aux")

        berth.docker_ok(
            "update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5",
            "--restart", "on-failure:2", cid,
        )
        fmt = "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}"
        assert berth.docker_ok("inspect", "-f", fmt, cid).split() == [
            str(64 * 1024 * 1024), "500000000", "on-failure"
        ]
        assert "Minimum memory limit allowed is 6MB" in berth.docker(
            "update", "--memory", "1m", cid
        ).stderr

        line = berth.docker_ok(
            "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", cid
        )
        name, usage, _, limit, pids = line.split()
        assert name == berth.docker_ok("inspect", "-f", "{{.Name}}", cid).strip().lstrip("/")
        assert limit == "64MiB" and pids == "1", line

        client = docker.DockerClient(base_url=berth.docker_host, version="auto", timeout=60)
        try:
            one = client.containers.get(cid).stats(stream=False)
            assert one["memory_stats"]["limit"] == 64 * 1024 * 1024
            assert one["cpu_stats"]["cpu_usage"]["total_usage"] > 0
            assert one["precpu_stats"]["cpu_usage"]["total_usage"] > 0
            stream = client.containers.get(cid).stats(stream=True, decode=True)
            first, second = next(stream), next(stream)
            assert first["read"] < second["read"]
            assert second["preread"] == first["read"]
            stream.close()  # type: ignore[attr-defined]
        finally:
            client.close()
    finally:
        berth.docker("rm", "-f", cid)


def test_top_of_stopped_container(berth: Berth, busybox_image: str) -> None:
    cid = berth.docker_ok("create", busybox_image, "true").strip()
    try:
        res = berth.docker("top", cid)
        assert res.returncode != 0 and f"Container {cid} is not running" in res.stderr
    finally:
        berth.docker("rm", "-f", cid)
