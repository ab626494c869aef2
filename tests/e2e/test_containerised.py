"""berth as containers: testcontainers-python and `docker-compose up` of compose.yaml in a real
Docker engine, then `docker run --rm busybox echo hi` through it and its trace at an OTLP receiver.

A scratch dockerd is started for this module (containerised.py); the tests skip, with the reason,
only when no Docker engine can be started here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest.mock
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import tlscerts
from berth_kit.testing import ANONYMOUS_NATS_PROBE, free_port
from containerised import REPO, Dockerd, Images, build_images, compose, scratch_dockerd

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SERVICES = {
    "berth-api-gateway",
    "berth-engine",
    "berth-lifecycle",
    "berth-runtime-agent",
    "berth-shim",
}
HEALTHY_TIMEOUT = 120.0


@dataclass
class Suite:
    api: str  # tcp://127.0.0.1:PORT, TLS with client certificates (ops/compose.tls.yaml)
    spans_url: str  # the OTLP stand-in's JSON view of what it received
    certs: Path  # the client's DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem

    def spans(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.spans_url, timeout=10) as r:
            return json.loads(r.read())


@pytest.fixture(scope="module")
def dockerd() -> Iterator[Dockerd]:
    with scratch_dockerd() as d:
        yield d


@dataclass(frozen=True)
class TLSFiles:
    server: Path  # ca.pem, server-cert.pem, server-key.pem (ops/compose.tls.yaml's BERTH_TLS_DIR)
    client: Path  # ca.pem, cert.pem, key.pem


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """ops/README.md's recipe, with openssl: the gateway's key readable by its user (uid 10000)."""
    d = tmp_path_factory.mktemp("tls")
    ca = tlscerts.make_ca(d / "ca", "ca")
    server = tlscerts.issue(ca, d / "ca", "server", server=True)
    client = tlscerts.issue(ca, d / "ca", "client", server=False)
    server_dir = d / "server"
    server_dir.mkdir()
    for src, name in (
        (ca.cert, "ca.pem"),
        (server.cert, "server-cert.pem"),
        (server.key, "server-key.pem"),
    ):
        (server_dir / name).write_bytes(src.read_bytes())
    os.chown(server_dir / "server-key.pem", 10000, 10000)
    (server_dir / "server-key.pem").chmod(0o400)
    return TLSFiles(server_dir, tlscerts.docker_cert_dir(d / "client", ca, client))


@pytest.fixture(scope="module")
def images(dockerd: Dockerd) -> Iterator[Images]:
    scratch = Path(tempfile.mkdtemp(prefix="bctx-", dir="/tmp"))
    try:
        yield build_images(dockerd, scratch)
    finally:
        subprocess.run(["rm", "-rf", str(scratch)], timeout=60, check=False)


def _wait_healthy(client: docker.DockerClient, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = {}
        for cid in ids:
            c = client.containers.get(cid)
            health = c.attrs["State"].get("Health", {}).get("Status", "none")
            states[c.name] = (c.status, health)
        if all(h == "healthy" for _, h in states.values()):
            return
        if any(s in ("exited", "dead") for s, _ in states.values()) or time.monotonic() > deadline:
            logs = {
                name: client.containers.get(name).logs(tail=30).decode(errors="replace")
                for name, (s, h) in states.items()
                if h != "healthy"
            }
            pytest.fail(
                f"containers not healthy: {states}\n"
                + "\n".join(f"--- {k}\n{v}" for k, v in logs.items())
            )
        time.sleep(1)


def _docker(
    suite: Suite, config: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "DOCKER_HOST": suite.api,
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(suite.certs),
        "DOCKER_CONFIG": str(config),
    }
    return subprocess.run(
        ["docker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _orphans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = {s["span_id"] for s in spans}
    return [s for s in spans if s["parent_span_id"] and s["parent_span_id"] not in ids]


def smoke(suite: Suite, tmp: Path) -> None:
    """docker CLI and docker-py through the containerised berth, and the run's trace."""
    from berth_testsupport import images as testimages

    config = tmp / "dc"
    config.mkdir(exist_ok=True)
    tar = tmp / "busybox.tar"
    tar.write_bytes(testimages.busybox_rootfs_tar())
    res = _docker(suite, config, "import", str(tar), "busybox:latest", timeout=120)
    assert res.returncode == 0, res.stderr

    before = {s["span_id"] for s in suite.spans()}
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    res = _docker(suite, config, "run", "--rm", "--name", name, "busybox", "echo", "hi")
    assert (res.returncode, res.stdout) == (0, "hi\n"), res.stderr
    res = _docker(
        suite, config, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert (res.returncode, res.stdout, res.stderr) == (3, "out\n", "err\n")

    tls = docker.tls.TLSConfig(
        client_cert=(str(suite.certs / "cert.pem"), str(suite.certs / "key.pem")),
        ca_cert=str(suite.certs / "ca.pem"),
        verify=True,
    )
    # requests would let REQUESTS_CA_BUNDLE replace the CA above (psf/requests#3829).
    with unittest.mock.patch.dict(os.environ):
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            os.environ.pop(name, None)
        client = docker.DockerClient(base_url=suite.api, tls=tls, timeout=60)
    client.api.trust_env = False
    try:
        assert (
            client.containers.run("busybox", ["echo", "from docker-py"], remove=True)
            == b"from docker-py\n"
        )
        c = client.containers.run("busybox", ["sh", "-c", "echo bye; exit 5"], detach=True)
        assert c.wait(timeout=60)["StatusCode"] == 5
        assert c.logs() == b"bye\n"
        c.remove()
    finally:
        client.close()

    # The first run's trace: the engine's ContainerCreate after `before`, then the whole trace.
    deadline = time.monotonic() + 30
    trace_id, spans = "", []
    while time.monotonic() < deadline:
        all_spans = suite.spans()
        if not trace_id:
            creates = [
                s
                for s in all_spans
                if s["span_id"] not in before
                and s["service"] == "berth-engine"
                and s["name"] == "ContainerCreate"
            ]
            trace_id = creates[0]["trace_id"] if creates else ""
        spans = [s for s in all_spans if trace_id and s["trace_id"] == trace_id]
        if SERVICES <= {s["service"] for s in spans} and not _orphans(spans):
            break
        time.sleep(0.5)
    assert trace_id, "no ContainerCreate span from berth-engine reached the OTLP receiver"
    services = {s["service"] for s in spans}
    assert SERVICES <= services, f"missing from the trace: {sorted(SERVICES - services)}"
    assert not _orphans(spans), f"spans without their parent: {_orphans(spans)}"
    roots = [s for s in spans if not s["parent_span_id"]]
    assert len(roots) == 1, f"expected one root span, got {roots}"


# --- testcontainers ------------------------------------------------------------------------------


def loopback(c: Any, port: int) -> Any:
    """Publish port on 127.0.0.1 only, on a free port (with_bind_ports cannot name the address)."""
    c.ports[f"{port}/tcp"] = ("127.0.0.1",)
    return c


def test_testcontainers_suite(
    dockerd: Dockerd,
    images: Images,
    tls_files: TLSFiles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    testcontainers_config.ryuk_disabled = True  # Ryuk's image cannot be pulled; we clean up
    # testcontainers finds its engine through DOCKER_HOST (restored after the test).
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    monkeypatch.delenv("TESTCONTAINERS_HOST_OVERRIDE", raising=False)
    client = dockerd.client()
    data = client.volumes.create(f"berth-tc-data-{uuid.uuid4().hex[:8]}")
    env = {
        "BERTH_NATS_URL": "nats://nats:4222",
        "BERTH_NODE": "berth",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    try:
        with ExitStack() as stack:
            net = stack.enter_context(Network())

            def container(image: str, alias: str) -> DockerContainer:
                return DockerContainer(image).with_network(net).with_network_aliases(alias)

            nats = stack.enter_context(
                container(images.nats, "nats").with_command(["-js", "-m", "8222"])
            )
            otlp = stack.enter_context(loopback(container(images.otlp, "jaeger"), 16686))
            deadline = time.monotonic() + 30
            while (
                nats.exec(
                    [
                        "python3",
                        "-c",
                        "import urllib.request as u; u.urlopen('http://127.0.0.1:8222/healthz')",
                    ]
                ).exit_code
                != 0
            ):
                assert time.monotonic() < deadline, "nats stand-in not ready"
                time.sleep(0.3)

            def berth(name: str) -> DockerContainer:
                c = container(images.service(name), name)
                for k, v in env.items():
                    c = c.with_env(k, v)
                return c

            started = [
                stack.enter_context(berth("engine")),
                stack.enter_context(
                    berth("lifecycle")
                    .with_volume_mapping(data.name, "/var/lib/berth", "rw")
                    .with_kwargs(
                        cap_drop=["ALL"],
                        cap_add=[
                            "CHOWN",
                            "DAC_OVERRIDE",
                            "FOWNER",
                            "FSETID",
                            "MKNOD",
                            "SETFCAP",
                            "SETUID",
                            "SETGID",
                            "SYS_ADMIN",
                            "SYS_CHROOT",
                        ],
                        security_opt=["apparmor=unconfined"],
                    )
                ),
                stack.enter_context(
                    berth("runtime-agent")
                    .with_volume_mapping(data.name, "/var/lib/berth", "rw")
                    .with_volume_mapping("/sys/fs/cgroup", "/sys/fs/cgroup", "rw")
                    .with_kwargs(
                        init=True,
                        cap_add=["SYS_ADMIN", "NET_ADMIN"],
                        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
                    )
                ),
                stack.enter_context(
                    loopback(
                        berth("api-gateway")
                        .with_volume_mapping(str(tls_files.server), "/etc/berth/tls", "ro")
                        .with_env("BERTH_HOSTS", "unix:///run/berth/docker.sock,tcp://0.0.0.0:2376")
                        .with_env("BERTH_TLSVERIFY", "1")
                        .with_env("BERTH_TLSCACERT", "/etc/berth/tls/ca.pem")
                        .with_env("BERTH_TLSCERT", "/etc/berth/tls/server-cert.pem")
                        .with_env("BERTH_TLSKEY", "/etc/berth/tls/server-key.pem"),
                        2376,
                    )
                ),
            ]
            _wait_healthy(client, [c.get_wrapped_container().id for c in started], HEALTHY_TIMEOUT)
            api_port = client.containers.get(started[-1].get_wrapped_container().id).ports[
                "2376/tcp"
            ][0]["HostPort"]
            ui_port = client.containers.get(otlp.get_wrapped_container().id).ports["16686/tcp"][0][
                "HostPort"
            ]
            suite = Suite(
                f"tcp://127.0.0.1:{api_port}",
                f"http://127.0.0.1:{ui_port}/spans",
                tls_files.client,
            )
            smoke(suite, tmp_path)
    finally:
        data.remove(force=True)


# --- docker-compose ------------------------------------------------------------------------------


def _assert_bus_locked(nats: Any) -> None:
    """Inside the compose network's NATS container: a client without credentials is refused."""
    code, out = nats.exec_run(["python3", "-c", ANONYMOUS_NATS_PROBE, "127.0.0.1", "4222"])
    text = out.decode(errors="replace")
    assert code == 0 and "Authorization Violation" in text and "PONG" not in text, text


def test_compose_config_is_valid() -> None:
    """compose.yaml as users get it (no override) is a valid Compose file (compose-spec schema)."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (make install)")
    res = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "config", "-q"],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr


def test_compose_suite(
    dockerd: Dockerd, images: Images, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """compose.yaml with ops/compose.tls.yaml: the API published with TLS only."""
    env = {
        **images.compose_env(),
        "BERTH_API_PORT": str(free_port()),
        "BERTH_TLS_DIR": str(tls_files.server),
        "BERTH_JAEGER_UI_PORT": str(free_port()),
    }
    tls = ("-f", str(REPO / "ops" / "compose.tls.yaml"))
    try:
        res = compose(dockerd, env, "up", "-d", "--no-build", timeout=300, files=tls)
        assert res.returncode == 0, f"docker-compose up failed:\n{res.stdout}\n{res.stderr}"
        client = dockerd.client()
        by_service = {
            c.labels["com.docker.compose.service"]: c
            for c in client.containers.list(
                all=True, filters={"label": "com.docker.compose.project=berthci"}
            )
        }
        expected = {
            "nats", "bus-init", "jaeger", "api-gateway", "engine", "lifecycle", "runtime-agent",
            "registry-proxy", "builder", "orchestrator",
        }  # fmt: skip
        assert set(by_service) == expected, f"compose containers: {sorted(by_service)}"
        # bus-init ran once and wrote the bus credentials; the others stay up.
        init = by_service.pop("bus-init")
        assert init.wait(timeout=60)["StatusCode"] == 0, init.logs().decode(errors="replace")
        _wait_healthy(client, [c.id for c in by_service.values()], HEALTHY_TIMEOUT)
        _assert_bus_locked(by_service["nats"])
        suite = Suite(
            f"tcp://127.0.0.1:{env['BERTH_API_PORT']}",
            f"http://127.0.0.1:{env['BERTH_JAEGER_UI_PORT']}/spans",
            tls_files.client,
        )
        smoke(suite, tmp_path)
        # Nothing else is published: the API (TLS) and Jaeger's UI are the only host ports.
        published = {
            p[0]["HostPort"]
            for c in client.containers.list(filters={"label": "com.docker.compose.project=berthci"})
            for p in (c.ports or {}).values()
            if p
        }
        assert published == {env["BERTH_API_PORT"], env["BERTH_JAEGER_UI_PORT"]}
    finally:
        res = compose(dockerd, env, "down", "-v", "--timeout", "20", timeout=180, files=tls)
        assert res.returncode == 0, f"docker-compose down -v failed:\n{res.stdout}\n{res.stderr}"
