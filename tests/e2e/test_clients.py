"""Real clients against berth's networks, ports and volumes: testcontainers-python and
docker-compose v1 (Debian's package)."""

from __future__ import annotations

import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest
from harness import Berth, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SERVE = "mkdir -p /www && echo hello-$NAME > /www/index.html && echo serving && exec httpd -f -p 80 -h /www"


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.read().decode()
    except OSError:
        return None


def test_testcontainers_http(
    berth: Berth, busybox_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    monkeypatch.setenv("DOCKER_HOST", berth.docker_host)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    monkeypatch.setenv("DOCKER_CONFIG", str(berth.docker_config))
    container = (
        DockerContainer(busybox_image)
        .with_env("NAME", "tc")
        .with_exposed_ports(80)
        .with_command(["sh", "-c", SERVE])
        .waiting_for(LogMessageWaitStrategy("serving").with_startup_timeout(60))
    )
    with container:  # started once its log says "serving"
        host = container.get_container_host_ip()
        port = container.get_exposed_port(80)
        assert (
            wait_until(lambda: _get(f"http://{host}:{port}/"), 60, "the mapped port")
            == "hello-tc\n"
        )


COMPOSE = """\
version: "3.7"
services:
  web:
    image: {image}
    command: ["sh", "-c", "{serve}"]
    environment:
      NAME: compose
    ports:
      - "127.0.0.1::80"
    networks:
      back:
        aliases: [frontdoor]
  app:
    image: {image}
    command: ["sh", "-c", "until wget -q -O /data/page http://frontdoor/; do sleep 1; done; cat /data/page; exec sleep 300"]
    volumes:
      - appdata:/data
    networks: [back]
    depends_on: [web]
networks:
  back: {{}}
volumes:
  appdata: {{}}
"""


def test_compose_up_ps_logs_down(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    project = f"bc{uuid.uuid4().hex[:8]}"
    (tmp_path / "docker-compose.yml").write_text(
        COMPOSE.format(image=busybox_image, serve=SERVE.replace('"', '\\"').replace("$", "$$"))
    )
    env = {**berth.client_env(), "COMPOSE_PROJECT_NAME": project}

    def compose(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    try:
        up = compose("up", "-d")
        assert up.returncode == 0, up.stderr
        ps = compose("ps")
        assert ps.returncode == 0 and f"{project}_web_1" in ps.stdout and "Up" in ps.stdout, (
            ps.stdout
        )
        port = compose("port", "web", "80").stdout.strip()
        assert port.startswith("127.0.0.1:"), port
        assert wait_until(lambda: _get(f"http://{port}/"), 60, "web's port") == "hello-compose\n"

        def app_fetched() -> str | None:
            out = compose("logs", "--no-color", "app").stdout
            return out if "hello-compose" in out else None

        wait_until(app_fetched, 90, "app to fetch from web by its alias")
        volumes = berth.docker_ok("volume", "ls", "-q").split()
        assert f"{project}_appdata" in volumes
    finally:
        down = compose("down", "-v", "-t", "1")
    assert down.returncode == 0, down.stderr
    assert f"{project}_appdata" not in berth.docker_ok("volume", "ls", "-q").split()
    assert (
        f"{project}_back" not in berth.docker_ok("network", "ls", "--format", "{{.Name}}").split()
    )
    assert not berth.docker_ok(
        "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"
    ).strip()
