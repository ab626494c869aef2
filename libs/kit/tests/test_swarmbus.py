"""The swarm's part of nats.conf: what the orchestrator decides, rendered so that the real
nats-server accepts it, and read back as written."""

from __future__ import annotations

import subprocess
from pathlib import Path

from berth_kit.busauth import ensure_credentials, render_server_config
from berth_kit.swarmbus import LeafRemote, LeafUser, SwarmBus, read_swarm_bus, write_swarm_bus
from berth_kit.testing import nats_server_binary

HASH = "$2b$10$" + "a" * 53

MANAGER = SwarmBus(
    listen="127.0.0.1:12377",
    users=(
        LeafUser("join-0123456789abcdef", "f" * 48, ("berth.swarm.v1.join",), ("berth.swarm.v1.joined.>",)),
        LeafUser("node-n1", HASH, ("berth.swarm.v1.node.n1",), ("berth.swarm.v1.changed", "berth.swarm.v1.assigned.n1.>")),
    ),
)
WORKER = SwarmBus(
    remote=LeafRemote(("10.0.0.1:2377", "10.0.0.2:2377"), "node-n1", "secret"),
    member={"node_id": "n1", "managers": "10.0.0.1:2377"},
)


def _nats_accepts(config: str, tmp_path: Path) -> None:
    path = tmp_path / "nats.conf"
    path.write_text(config)
    res = subprocess.run([nats_server_binary(), "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_managers_and_a_workers_config_are_valid_for_nats_server(tmp_path: Path) -> None:
    creds = ensure_credentials(tmp_path / "bus")
    for bus in (MANAGER, WORKER, SwarmBus()):
        _nats_accepts(render_server_config(creds, (), bus), tmp_path)
    manager = render_server_config(creds, (), MANAGER)
    assert 'listen: "127.0.0.1:12377"' in manager and "no_advertise: true" in manager
    assert 'publish: {allow: ["berth.swarm.v1.node.n1"]}' in manager
    worker = render_server_config(creds, (), WORKER)
    assert '"nats-leaf://node-n1:secret@10.0.0.1:2377", "nats-leaf://node-n1:secret@10.0.0.2:2377"' in worker
    assert "leafnodes" not in render_server_config(creds, (), SwarmBus())


def test_the_file_round_trips_privately_and_an_unreadable_one_is_no_swarm(tmp_path: Path) -> None:
    path = tmp_path / "swarm.json"
    assert read_swarm_bus(path).empty
    for bus in (MANAGER, WORKER):
        write_swarm_bus(path, bus)
        assert read_swarm_bus(path) == bus
        assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("{not json")
    assert read_swarm_bus(path) == SwarmBus()


def test_secrets_stay_out_of_reprs() -> None:
    assert "secret" not in repr(WORKER) and HASH not in repr(MANAGER)
