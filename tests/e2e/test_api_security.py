"""The API over TCP as dockerd serves it (--tlsverify), the refusal of plain TCP on a non-loopback
address, and the CSRF case (a browser's text/plain POST creates nothing).

Certificates are made here with the openssl CLI (tlscerts.py): a CA with a server and a client
certificate, and a second CA with a client certificate of its own."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import tlscerts
from berth_kit.testing import free_port
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@dataclass(frozen=True)
class Certs:
    ca: tlscerts.Pair
    server: tlscerts.Pair
    client: tlscerts.Pair
    other_client: tlscerts.Pair  # signed by another CA
    client_dir: Path  # DOCKER_CERT_PATH-style: ca.pem, cert.pem, key.pem

    def server_flags(self) -> list[str]:
        return [
            "--tlsverify",
            f"--tlscacert={self.ca.cert}",
            f"--tlscert={self.server.cert}",
            f"--tlskey={self.server.key}",
        ]


class TLSBerth(Berth):
    """A berth with extra `berth up` arguments (the TLS flags)."""

    extra_up_args: list[str]

    def up_args(self) -> list[str]:
        return super().up_args() + self.extra_up_args


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    d = tmp_path_factory.mktemp("tls")
    ca = tlscerts.make_ca(d, "ca")
    other_ca = tlscerts.make_ca(d / "other", "other-ca")
    client = tlscerts.issue(ca, d, "client", server=False)
    return Certs(
        ca=ca,
        server=tlscerts.issue(ca, d, "server", server=True),
        client=client,
        other_client=tlscerts.issue(other_ca, d / "other", "client", server=False),
        client_dir=tlscerts.docker_cert_dir(d / "docker", ca, client),
    )


def start(certs: Certs, hosts: tuple[str, ...]) -> TLSBerth:
    b = TLSBerth.create(None, extra_hosts=hosts)
    b.extra_up_args = certs.server_flags()
    return b


@pytest.fixture(scope="module")
def tls_berth(certs: Certs) -> Iterator[tuple[TLSBerth, str]]:
    tcp = f"tcp://127.0.0.1:{free_port()}"
    b = start(certs, (tcp,))
    try:
        b.up_detached()
        b.import_busybox()
        yield b, tcp
    finally:
        b.teardown()


def tls_docker(
    b: Berth,
    certs: Certs,
    host: str,
    *args: str,
    client: tlscerts.Pair | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    pair = client or certs.client
    flags = [f"--tlscacert={certs.ca.cert}", f"--tlscert={pair.cert}", f"--tlskey={pair.key}"]
    # -H wins over the harness's DOCKER_HOST (the unix socket).
    return b.docker("--tlsverify", *flags, "-H", host, *args, input=input, timeout=90)


def test_docker_tlsverify_with_a_client_certificate(
    tls_berth: tuple[TLSBerth, str], certs: Certs
) -> None:
    b, tcp = tls_berth
    out = tls_docker(b, certs, tcp, "run", "--rm", "busybox", "echo", "hello over tls")
    assert (out.returncode, out.stdout) == (0, "hello over tls\n"), out.stderr
    # stdin through the hijacked TLS connection, and its half-close.
    res = tls_docker(b, certs, tcp, "run", "--rm", "-i", "busybox", "cat", input="via stdin\n")
    assert (res.returncode, res.stdout) == (0, "via stdin\n"), res.stderr


def test_docker_context_and_cert_path(tls_berth: tuple[TLSBerth, str], certs: Certs) -> None:
    b, tcp = tls_berth
    ctx = f"host={tcp},ca={certs.ca.cert},cert={certs.client.cert},key={certs.client.key}"
    created = b.docker("context", "create", "berth-tls", "--docker", ctx)
    assert created.returncode == 0, created.stderr
    out = b.docker("--context", "berth-tls", "version", "--format", "{{.Server.APIVersion}}")
    assert (out.returncode, out.stdout.strip()) == (0, "1.44"), out.stderr
    # DOCKER_HOST + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH: what `berth up` prints for a TLS host.
    env = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs.client_dir)}
    listed = b.docker("ps", "-a", host=tcp, extra_env=env)
    assert listed.returncode == 0, listed.stderr


def test_docker_py_tlsconfig(
    tls_berth: tuple[TLSBerth, str], certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, tcp = tls_berth
    # requests lets these override a session's CA (psf/requests#3829): TLSConfig's ca_cert
    # would lose to the system bundle this machine's environment names.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls = docker.tls.TLSConfig(
        client_cert=(str(certs.client.cert), str(certs.client.key)),
        ca_cert=str(certs.ca.cert),
        verify=True,
    )
    client = docker.DockerClient(base_url=tcp.replace("tcp://", "https://"), tls=tls, timeout=60)
    try:
        assert client.ping()
        out = client.containers.run("busybox", ["echo", "docker-py"], remove=True)
        assert out == b"docker-py\n"
    finally:
        client.close()


def _tls_client(certs: Certs, client: tlscerts.Pair | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.ca.cert))
    if client is not None:
        ctx.load_cert_chain(str(client.cert), str(client.key))
    return ctx


def _ping_over_tls(tcp: str, ctx: ssl.SSLContext) -> int:
    """Status of GET /_ping; raises when the server refuses the connection."""
    host, _, port = tcp[len("tcp://") :].rpartition(":")
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=15)
    try:
        conn.request("GET", "/_ping")
        return conn.getresponse().status
    finally:
        conn.close()


def test_tls_matrix(tls_berth: tuple[TLSBerth, str], certs: Certs) -> None:
    b, tcp = tls_berth
    # Verified client: in.
    assert _ping_over_tls(tcp, _tls_client(certs, certs.client)) == 200
    # No client certificate: out.
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        _ping_over_tls(tcp, _tls_client(certs, None))
    # A certificate from another CA: out.
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        _ping_over_tls(tcp, _tls_client(certs, certs.other_client))
    # Plain HTTP on the TLS port: no answer but the end of the connection.
    host, _, port = tcp[len("tcp://") :].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert b"HTTP/" not in received and b"OK" not in received
    # The docker CLI: without TLS, and with a certificate of another CA, refused too.
    plain = b.docker("ps", host=tcp)
    assert plain.returncode != 0
    other = tls_docker(b, certs, tcp, "ps", client=certs.other_client)
    assert other.returncode != 0
    assert "tls" in other.stderr.lower(), other.stderr


def test_tls_applies_to_tcp_only(tls_berth: tuple[TLSBerth, str]) -> None:
    b, _ = tls_berth
    # The unix socket next to it still speaks plain HTTP, as dockerd's.
    assert b.http("GET", "/_ping").status == 200


def test_plain_tcp_on_a_non_loopback_address_is_refused(certs: Certs) -> None:
    b = Berth.create(None, extra_hosts=(f"tcp://0.0.0.0:{free_port()}",))
    try:
        res = b.berth(*b.up_args(), "-d", "--ready-timeout", "30", timeout=60)
        assert res.returncode == 2, (res.stdout, res.stderr)
        assert "binding to IP address without --tlsverify is insecure" in res.stderr
        assert (
            "You can override this by explicitly specifying '--tls=false' or '--tlsverify=false'"
            in res.stderr
        )
        assert not (b.exec_root / "berth.json").exists()  # nothing was started
    finally:
        b.teardown()


def test_tls_only_berth_reports_ready(certs: Certs) -> None:
    """`berth up -d` with only a TLS host: its readiness probe cannot present a client
    certificate, and still sees the API come up (apiprobe.py)."""
    tcp = f"tcp://127.0.0.1:{free_port()}"
    b = start(certs, ())
    try:
        args = b.up_args()
        args[args.index("-H") + 1] = tcp  # the only host
        res = b.berth(*args, "-d", "--ready-timeout", "60", timeout=100)
        assert res.returncode == 0, (res.stdout, res.stderr)
        assert f"export DOCKER_HOST={tcp}" in res.stdout
        assert "DOCKER_TLS_VERIFY=1" in res.stdout
        status = b.status()
        assert (status["docker_host"], status["api"]["ping"]) == (tcp, True)
        assert _ping_over_tls(tcp, _tls_client(certs, certs.client)) == 200
    finally:
        b.teardown()


def test_text_plain_create_is_refused_and_creates_nothing(berth: Berth, busybox_image: str) -> None:
    before = berth.http("GET", "/containers/json?all=1").json()
    body = json.dumps({"Image": busybox_image, "Cmd": ["true"]}).encode()
    res = berth.http(
        "POST",
        "/v1.44/containers/create?name=csrf-victim",
        body,
        {"Content-Type": "text/plain", "Origin": "https://evil.example"},
    )
    assert res.status == 403  # a browser's request, refused for its Origin
    res = berth.http(
        "POST", "/v1.44/containers/create?name=csrf-victim", body, {"Content-Type": "text/plain"}
    )
    assert res.status == 400
    assert res.json()["message"] == (
        "unsupported Content-Type header (text/plain): must be 'application/json'"
    )
    assert berth.http("GET", "/containers/json?all=1").json() == before
    assert berth.http("GET", "/containers/csrf-victim/json").status == 404
