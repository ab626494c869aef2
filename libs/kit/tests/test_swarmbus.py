"""The swarm's part of nats.conf: what the orchestrator decides, rendered so that the real
nats-server accepts it, and read back as written."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from berth_kit.busauth import ensure_credentials, jetstream_settings, render_server_config
from berth_kit.storekey import STORE_KEY_ENV
from berth_kit.swarmbus import (
    LeafRemote,
    LeafUser,
    SwarmBus,
    SwarmServer,
    leafnode_settings,
    read_swarm_bus,
    render_swarm_server,
    write_swarm_bus,
)
from berth_kit.testing import nats_server_binary

HASH = "$2b$10$" + "a" * 53

SERVER = SwarmServer(
    name="m1",
    client_port=14222,
    client_password="client-secret",
    store="/tmp/none",
    listen="127.0.0.1:12377",
    users=(
        LeafUser("join-0123456789abcdef", "f" * 48, ("berth.swarm.v1.join",), ("berth.swarm.v1.joined.join-0123456789abcdef.>",)),
        LeafUser("node-n1", HASH, ("berth.swarm.v1.node.n1",), ("berth.swarm.v1.changed", "berth.swarm.v1.assigned.n1.>")),
    ),
)
CLUSTERED = replace(
    SERVER, cluster="berth-c1", cluster_listen="127.0.0.1:12378", cluster_advertise="10.0.0.1:2378",
    routes=("10.0.0.2:2378", "10.0.0.3:2378"), route_user="route-u", route_password="route-secret",
    system_password="system-secret",
)  # fmt: skip
MANAGER = SwarmBus(server=CLUSTERED, member={"node_id": "m1"})
WORKER = SwarmBus(
    remote=LeafRemote(("10.0.0.1:2377", "10.0.0.2:2377"), "node-n1", "secret"),
    member={"node_id": "n1", "managers": "10.0.0.1:2377"},
)


def _nats_accepts(config: str, tmp_path: Path, env: dict[str, str] | None = None) -> None:
    path = tmp_path / "nats.conf"
    path.write_text(config)
    res = subprocess.run([nats_server_binary(), "-t", "-c", str(path)], capture_output=True, text=True, timeout=30,
                         env=env)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr


def test_an_encrypted_store_takes_its_key_from_the_environment_only(tmp_path: Path) -> None:
    store = tmp_path / "js"
    config = render_swarm_server(replace(SERVER, store=str(store)), jetstream_settings(store, STORE_KEY_ENV))
    assert "cipher: chachapoly" in config and f"key: ${STORE_KEY_ENV}" in config
    _nats_accepts(config, tmp_path, {**os.environ, STORE_KEY_ENV: "a-key-never-written-down"})
    with pytest.raises(AssertionError, match="can not be found"):  # no key given: no server
        _nats_accepts(config, tmp_path, {k: v for k, v in os.environ.items() if k != STORE_KEY_ENV})


def test_a_workers_link_and_a_managers_swarm_server_are_valid_for_nats_server(tmp_path: Path) -> None:
    creds = ensure_credentials(tmp_path / "bus")
    for bus in (MANAGER, WORKER, SwarmBus()):
        _nats_accepts(render_server_config(creds, (), bus), tmp_path)
    worker = render_server_config(creds, (), WORKER)
    assert '"nats-leaf://node-n1:secret@10.0.0.1:2377", "nats-leaf://node-n1:secret@10.0.0.2:2377"' in worker
    # A manager's own bus never carries the swarm: no listener, no cluster, no leaf users.
    for bus in (MANAGER, SwarmBus()):
        own = render_server_config(creds, (), bus)
        assert "leafnodes" not in own and "cluster" not in own and "node-n1" not in own
    store = tmp_path / "js"
    for server in (SERVER, CLUSTERED):
        _nats_accepts(render_swarm_server(replace(server, store=str(store)), jetstream_settings(store)), tmp_path)
    lone = render_swarm_server(SERVER, ())
    assert 'listen: "127.0.0.1:12377"' in lone and "no_advertise: true" in lone and "cluster" not in lone
    assert 'listen: "127.0.0.1:14222"' in lone  # the orchestrator's port: loopback only
    assert 'publish: {allow: ["berth.swarm.v1.node.n1"]}' in lone
    clustered = render_swarm_server(CLUSTERED, ())
    assert '"nats-route://route-u:route-secret@10.0.0.2:2378", "nats-route://route-u:route-secret@10.0.0.3:2378"' in clustered
    assert 'authorization {user: "route-u", password: "route-secret"}' in clustered
    # The system account (a demoted manager's server removed from JetStream's cluster).
    assert 'accounts { SYS { users = [{user: "berth-system", password: "system-secret"}] } }' in clustered
    assert "system_account: SYS" in clustered and "system_account" not in lone


def test_with_a_ca_both_ports_speak_tls_and_the_link_verifies_the_managers() -> None:
    # nats-server -t opens the files: the real files are tried in the orchestrator's test_swarmca.
    clustered = render_swarm_server(replace(CLUSTERED, tls_dir="/t"), ())
    leaf_tls = 'tls {cert_file: "/t/node.pem", key_file: "/t/node-key.pem", timeout: 3}'
    route_tls = 'tls {cert_file: "/t/node.pem", key_file: "/t/node-key.pem", ca_file: "/t/ca.pem", verify: true, timeout: 3}'
    assert leaf_tls in clustered.split("leafnodes {")[1]
    assert route_tls in clustered.split("cluster {")[1].split("leafnodes {")[0]
    assert "tls" not in render_swarm_server(CLUSTERED, ())
    worker = replace(WORKER, remote=replace(WORKER.remote, ca_file="/t/ca.pem"))
    settings = "\n".join(leafnode_settings(worker))
    assert 'tls: {ca_file: "/t/ca.pem", timeout: 3}' in settings
    assert "tls" not in "\n".join(leafnode_settings(WORKER))
    # The managers' keys: the only peers its routes admit (not the swarm port, which takes workers).
    pinned = render_swarm_server(replace(CLUSTERED, tls_dir="/t", route_pins=("aa" * 32, "bb" * 32)), ())
    pins = f'pinned_certs: ["{"aa" * 32}", "{"bb" * 32}"]'
    assert pins in pinned.split("cluster {")[1].split("leafnodes {")[0]
    assert "pinned_certs" not in pinned.split("leafnodes {")[1] and "pinned_certs" not in clustered


def test_what_a_reload_cannot_change_asks_for_a_restart() -> None:
    assert CLUSTERED.restart_needed(SERVER)  # into a cluster
    assert not replace(CLUSTERED, routes=("10.0.0.4:2378",)).restart_needed(CLUSTERED)
    assert not replace(SERVER, users=()).restart_needed(SERVER)
    assert replace(SERVER, listen="0.0.0.0:2377").restart_needed(SERVER)
    assert replace(SERVER, tls_dir="/t").restart_needed(SERVER)
    assert not replace(CLUSTERED, route_pins=("aa" * 32,)).restart_needed(CLUSTERED)  # a reload cuts the unpinned
    assert not replace(CLUSTERED, cert_digest="ab12").restart_needed(CLUSTERED)  # a renewed certificate: reloaded


def test_the_file_round_trips_privately_and_an_unreadable_one_is_no_swarm(tmp_path: Path) -> None:
    path = tmp_path / "swarm.json"
    assert read_swarm_bus(path).empty
    tls_worker = replace(WORKER, remote=replace(WORKER.remote, ca_file="/t/ca.pem"))
    tls_manager = replace(MANAGER, server=replace(CLUSTERED, tls_dir="/t", route_pins=("aa" * 32,), cert_digest="ab12"))
    for bus in (MANAGER, WORKER, tls_worker, tls_manager):
        write_swarm_bus(path, bus)
        assert read_swarm_bus(path) == bus
        assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("{not json")
    assert read_swarm_bus(path) == SwarmBus()


def test_secrets_stay_out_of_reprs() -> None:
    assert "secret" not in repr(WORKER) and HASH not in repr(MANAGER) and "secret" not in repr(MANAGER)
