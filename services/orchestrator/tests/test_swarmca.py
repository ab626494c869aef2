"""The swarm's CA and TLS on its ports, with real nats-servers: a link verifies the manager's
certificate with the CA pinned to the token, routes are mutual TLS, and nothing else connects."""

from __future__ import annotations

import base64
import contextlib
import datetime
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import nats
import pytest
from berth_contracts.errors import InvalidParameter, Unavailable
from berth_kit.swarmbus import (
    SWARM_SERVER_USER,
    LeafRemote,
    LeafUser,
    SwarmBus,
    SwarmServer,
    leafnode_settings,
    render_swarm_server,
)
from berth_kit.testing import free_port, nats_server_binary
from berth_orchestrator import ids, swarmca
from berth_orchestrator.membership import parse_token
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

pytestmark = pytest.mark.anyio
CA, CA_KEY = swarmca.new_ca()


def _manager_tls(tmp: Path, name: str, names: list[str], ca: tuple[str, str] = (CA, CA_KEY)) -> swarmca.NodeTLS:
    tls = swarmca.NodeTLS(tmp / f"{name}-tls")
    key, request = swarmca.new_key_and_request(names)
    tls.write_key(key)
    tls.write_cert(swarmca.sign(ca[0], ca[1], request, name, "cluster1"), ca[0])
    tls.write_ca(ca[0])
    return tls


@contextlib.contextmanager
def _nats(tmp: Path, name: str, config: str) -> Iterator[Path]:
    path = tmp / f"{name}.conf"
    path.write_text(config)
    log = tmp / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([nats_server_binary(), "-c", str(path)], stdout=out, stderr=subprocess.STDOUT)
    try:
        yield log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _server(tmp: Path, name: str, tls: swarmca.NodeTLS | None, **kw: object) -> tuple[SwarmServer, int]:
    port = free_port()
    server = SwarmServer(
        name=name, client_port=port, client_password="pw", store=str(tmp / f"{name}-js"),
        listen=f"127.0.0.1:{free_port()}", users=(LeafUser("join-x", "secret", (">",), (">",)),),
        tls_dir=str(tls.dir) if tls else "",
    )  # fmt: skip
    return replace(server, **kw), port  # type: ignore[arg-type]


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with contextlib.closing(__import__("socket").create_connection(("127.0.0.1", port), timeout=1)):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _url(port: int, swarm_server: bool) -> str:
    """A swarm server's client port takes the orchestrator's user; a worker's test server none."""
    return f"nats://{SWARM_SERVER_USER}:pw@127.0.0.1:{port}" if swarm_server else f"nats://127.0.0.1:{port}"


async def _crosses(publish: str, subscribe: str, within: float = 4.0) -> bool:
    """Whether a message published at one server reaches a subscriber at the other."""
    sub_nc = await nats.connect(subscribe)
    pub_nc = await nats.connect(publish)
    try:
        sub = await sub_nc.subscribe("probe")
        await sub_nc.flush()
        with anyio.move_on_after(within):
            while True:
                await pub_nc.publish("probe", b"x")
                await pub_nc.flush()
                with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                    await sub.next_msg(timeout=0.2)
                    return True
        return False
    finally:
        await pub_nc.close()
        await sub_nc.close()


def _worker_config(manager: SwarmServer, ca_file: str) -> tuple[str, int]:
    port = free_port()
    link = LeafRemote((manager.listen,), "join-x", "secret", ca_file)
    return f"listen: 127.0.0.1:{port}\n" + "\n".join(leafnode_settings(SwarmBus(remote=link))) + "\n", port


def test_the_tokens_digest_is_the_cas_and_a_token_carries_it() -> None:
    digest = swarmca.digest(CA)
    assert len(digest) == 50 and digest == swarmca.digest(CA)
    assert parse_token(ids.join_token(digest, ids.new_secret()))[0] == digest
    assert swarmca.digest(swarmca.new_ca()[0]) != digest
    assert swarmca.digest_hex(digest) == f"{int(digest, 36):064x}"


def test_a_managers_certificate_names_only_addresses_and_serves_both_ends(tmp_path: Path) -> None:
    key, request = swarmca.new_key_and_request(["10.0.0.1", "manager-1", "", "10.0.0.1"])
    cert = x509.load_pem_x509_certificate(swarmca.sign(CA, CA_KEY, request, "node1", "cluster1").encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["10.0.0.1", "manager-1"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.issuer == x509.load_pem_x509_certificate(CA.encode()).subject
    assert "BEGIN PRIVATE KEY" in key
    for bad in ("", "not a request", CA):
        with pytest.raises(InvalidParameter, match="certificate signing request"):
            swarmca.sign(CA, CA_KEY, bad, "node1", "cluster1")
    with pytest.raises(InvalidParameter):
        swarmca.checked_request("x" * 20000)


def test_files_are_private_and_go_with_the_swarm(tmp_path: Path) -> None:
    tls = _manager_tls(tmp_path, "m1", ["127.0.0.1"])
    assert tls.has_cert() and tls.dir.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (tls.ca, tls.cert, tls.key))
    assert tls.cert.read_text().endswith(CA)  # the chain a joining node reads the CA from
    tls.remove()
    assert not tls.dir.exists()


async def test_a_link_verifies_the_manager_with_the_pinned_ca(tmp_path: Path) -> None:
    tls = _manager_tls(tmp_path, "m1", ["127.0.0.1"])
    manager, manager_port = _server(tmp_path, "m1", tls)
    with _nats(tmp_path, "m1", render_swarm_server(manager, ())):
        _wait_listening(manager_port)
        host, port = manager.listen.rsplit(":", 1)
        # The CA, pinned to the token's digest: swarmkit's words when it is another.
        fetched = swarmca.fetch_remote_ca((host, int(port)), swarmca.digest(CA), 5)
        assert fetched == CA
        with pytest.raises(InvalidParameter, match="remote CA does not match fingerprint. Expected: 0{64}"):
            swarmca.fetch_remote_ca((host, int(port)), "0" * 50, 5)
        ca_file = tmp_path / "pinned.pem"
        ca_file.write_text(fetched)
        config, worker_port = _worker_config(manager, str(ca_file))
        with _nats(tmp_path, "w1", config):
            _wait_listening(worker_port)
            assert await _crosses(_url(worker_port, False), _url(manager_port, True))
        # Another CA: the link never comes up, so its credentials are never sent.
        other = tmp_path / "other.pem"
        other.write_text(swarmca.new_ca()[0])
        config, worker_port = _worker_config(manager, str(other))
        with _nats(tmp_path, "w2", config) as log:
            _wait_listening(worker_port)
            assert not await _crosses(_url(worker_port, False), _url(manager_port, True), within=2.5)
        assert "certificate signed by unknown authority" in log.read_text()
        # No CA at all: the link still speaks TLS (the port asks for it) and fails verification.
        config, worker_port = _worker_config(manager, "")
        with _nats(tmp_path, "w3", config) as log:
            _wait_listening(worker_port)
            assert not await _crosses(_url(worker_port, False), _url(manager_port, True), within=2.5)
        assert "TLS leafnode handshake error" in log.read_text()


async def test_a_certificate_that_does_not_name_the_address_dialled_is_refused(tmp_path: Path) -> None:
    tls = _manager_tls(tmp_path, "m1", ["10.255.0.1"])
    manager, manager_port = _server(tmp_path, "m1", tls)
    with _nats(tmp_path, "m1", render_swarm_server(manager, ())):
        _wait_listening(manager_port)
        config, worker_port = _worker_config(manager, str(tls.ca))
        with _nats(tmp_path, "w1", config) as log:
            _wait_listening(worker_port)
            assert not await _crosses(_url(worker_port, False), _url(manager_port, True), within=2.5)
        assert "certificate is valid for 10.255.0.1, not 127.0.0.1" in log.read_text()


def test_a_plain_port_is_named_as_such() -> None:
    with pytest.raises((Unavailable, OSError)):
        swarmca.fetch_remote_ca(("127.0.0.1", free_port()), swarmca.digest(CA), 1)


async def test_routes_are_mutual_tls_with_the_swarms_ca(tmp_path: Path) -> None:
    route_ports = [free_port(), free_port(), free_port()]

    def clustered(name: str, i: int, tls: swarmca.NodeTLS) -> tuple[SwarmServer, int]:
        others = tuple(f"127.0.0.1:{p}" for j, p in enumerate(route_ports) if j != i)
        return _server(
            tmp_path, name, tls, cluster="berth-c1", cluster_listen=f"127.0.0.1:{route_ports[i]}",
            cluster_advertise=f"127.0.0.1:{route_ports[i]}", routes=others[:1] if i == 2 else (),
            route_user="route-u", route_password="route-secret",
        )  # fmt: skip

    m1, p1 = clustered("m1", 0, _manager_tls(tmp_path, "m1", ["127.0.0.1"]))
    m2, p2 = clustered("m2", 1, _manager_tls(tmp_path, "m2", ["127.0.0.1"]))
    m2 = replace(m2, routes=(f"127.0.0.1:{route_ports[0]}",))
    # A server whose certificate another CA signed: its route is refused.
    other_ca = swarmca.new_ca()
    m3, p3 = clustered("m3", 2, _manager_tls(tmp_path, "m3", ["127.0.0.1"], other_ca))
    with (
        _nats(tmp_path, "m1", render_swarm_server(m1, ())),
        _nats(tmp_path, "m2", render_swarm_server(m2, ())),
        _nats(tmp_path, "m3", render_swarm_server(m3, ())) as m3_log,
    ):
        for port in (p1, p2, p3):
            _wait_listening(port)
        assert await _crosses(_url(p2, True), _url(p1, True))
        assert not await _crosses(_url(p3, True), _url(p1, True), within=2.5)
        assert "TLS route handshake error" in m3_log.read_text()


async def test_routes_admit_only_the_pinned_managers_keys(tmp_path: Path) -> None:
    """A certificate of the swarm's CA is not enough: a manager no longer in the state (its
    key unpinned) is refused, and its route cut at the reload that unpins it."""
    route_ports = [free_port(), free_port(), free_port()]
    tls = [_manager_tls(tmp_path, f"m{i}", ["127.0.0.1"]) for i in range(3)]
    pins = tuple(sorted(swarmca.key_pin(t.cert.read_text()) for t in tls))
    assert len(set(pins)) == 3 and all(len(p) == 64 for p in pins)

    def clustered(i: int, pinned: tuple[str, ...]) -> tuple[SwarmServer, int]:
        return _server(
            tmp_path, f"m{i}", tls[i], cluster="berth-c1", cluster_listen=f"127.0.0.1:{route_ports[i]}",
            cluster_advertise=f"127.0.0.1:{route_ports[i]}",
            routes=tuple(f"127.0.0.1:{p}" for j, p in enumerate(route_ports) if j != i),
            route_user="route-u", route_password="route-secret", route_pins=pinned,
        )  # fmt: skip

    servers = [clustered(i, pins) for i in range(3)]
    config = [tmp_path / f"m{i}.conf" for i in range(3)]
    with (
        _nats(tmp_path, "m0", render_swarm_server(servers[0][0], ())) as m0_log,
        _nats(tmp_path, "m1", render_swarm_server(servers[1][0], ())),
        _nats(tmp_path, "m2", render_swarm_server(servers[2][0], ())),
    ):
        for _, port in servers:
            _wait_listening(port)
        (p0, p1, p2) = (port for _, port in servers)
        assert await _crosses(_url(p2, True), _url(p0, True), within=8)
        # m2 leaves the state: the others reload without its key, and cut its routes.
        unpinned = tuple(p for p in pins if p != swarmca.key_pin(tls[2].cert.read_text()))
        for i in (0, 1):
            config[i].write_text(render_swarm_server(replace(servers[i][0], route_pins=unpinned), ()))
            await anyio.run_process(["pkill", "-HUP", "-f", str(config[i])])
        deadline = time.monotonic() + 10
        while "certificate not pinned" not in m0_log.read_text():
            assert time.monotonic() < deadline, m0_log.read_text()[-2000:]
            await anyio.sleep(0.1)
        assert not await _crosses(_url(p2, True), _url(p0, True), within=2.5)
        assert await _crosses(_url(p1, True), _url(p0, True))
        # What a new manager asks before its server starts (joining: until the routes admit it).
        route0 = ("127.0.0.1", route_ports[0])
        assert await anyio.to_thread.run_sync(swarmca.route_admits, route0, tls[1], 2.0) is True
        assert await anyio.to_thread.run_sync(swarmca.route_admits, route0, tls[2], 2.0) is False
        assert await anyio.to_thread.run_sync(swarmca.route_admits, ("127.0.0.1", free_port()), tls[1], 2.0) is None


def test_a_pin_is_the_public_keys_whatever_signs_it(tmp_path: Path) -> None:
    key, request = swarmca.new_key_and_request(["127.0.0.1"])
    first = swarmca.sign(CA, CA_KEY, request, "n1", "cluster1")
    again = swarmca.sign(CA, CA_KEY, request, "n1", "cluster1")
    assert first != again and swarmca.key_pin(first) == swarmca.key_pin(again)
    _, other_request = swarmca.new_key_and_request(["127.0.0.1"])
    assert swarmca.key_pin(swarmca.sign(CA, CA_KEY, other_request, "n1", "cluster1")) != swarmca.key_pin(first)


def test_a_certificate_lasts_the_swarms_cert_expiry_and_is_due_for_renewal_at_half_of_it() -> None:
    assert swarmca.node_lifetime({}) == datetime.timedelta(days=90)  # swarmkit's default
    two_hours = {"CAConfig": {"NodeCertExpiry": 2 * 3600 * 10**9}}
    assert swarmca.node_lifetime(two_hours) == datetime.timedelta(hours=2)
    _, request = swarmca.new_key_and_request(["127.0.0.1"])
    cert_pem = swarmca.sign(CA, CA_KEY, request, "n1", "cluster1", swarmca.node_lifetime(two_hours))
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    assert end - start == datetime.timedelta(hours=2, minutes=5)  # backdated 5 minutes for clock skew
    assert swarmca.expires(cert_pem) == end
    assert not swarmca.renewal_due(cert_pem)
    assert not swarmca.renewal_due(cert_pem, start + (end - start) / 2 - datetime.timedelta(seconds=1))
    assert swarmca.renewal_due(cert_pem, start + (end - start) / 2)


async def test_a_renewed_certificate_is_presented_after_a_reload(tmp_path: Path) -> None:
    """Renewal writes the same files: a reload (SIGHUP, as the supervisor sends when the
    server's cert_digest changed) makes new connections get the new certificate."""
    tls = swarmca.NodeTLS(tmp_path / "m1-tls")
    key, request = swarmca.new_key_and_request(["127.0.0.1"])  # kept in the node's record
    tls.write_key(key)
    tls.write_cert(swarmca.sign(CA, CA_KEY, request, "m1", "cluster1"), CA)
    server, _ = _server(tmp_path, "m1", tls)
    host, port = server.listen.split(":")
    config = tmp_path / "m1.conf"
    with _nats(tmp_path, "m1", render_swarm_server(server, ())):
        _wait_listening(int(port))
        first = swarmca.presented_chain((host, int(port)), 5)[0]
        renewed = swarmca.sign(CA, CA_KEY, request, "m1", "cluster1")  # the same key, signed again
        tls.write_cert(renewed, CA)
        assert swarmca.presented_chain((host, int(port)), 5)[0] == first  # not before the reload
        await anyio.run_process(["pkill", "-HUP", "-f", str(config)])
        deadline = time.monotonic() + 10
        while swarmca.presented_chain((host, int(port)), 5)[0] == first:
            assert time.monotonic() < deadline, "the renewed certificate was not presented"
            await anyio.sleep(0.1)
        assert swarmca.presented_chain((host, int(port)), 5)[0] == renewed
        assert swarmca.key_pin(renewed) == swarmca.key_pin(first)


def test_tls_info_names_the_ca_as_swarmkit_shows_an_issuer() -> None:
    info = swarmca.tls_info(CA)
    ca = x509.load_pem_x509_certificate(CA.encode())
    assert info["TrustRoot"] == CA
    assert base64.b64decode(info["CertIssuerSubject"]) == ca.subject.public_bytes()
    assert serialization.load_der_public_key(base64.b64decode(info["CertIssuerPublicKey"])) == ca.public_key()
    assert swarmca.tls_info("") == {"TrustRoot": "", "CertIssuerSubject": "", "CertIssuerPublicKey": ""}
