"""Autolock with the real docker CLI, across a restart of the whole berth: `swarm init
--autolock` keeps the swarm's state encrypted with a key that a restarted manager cannot read
until `docker swarm unlock`; `unlock-key --rotate` and `update --autolock=false`. The wording
is dockerd's (daemon/cluster/errors.go)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from berth_kit.testing import free_port
from harness import Berth, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LOCKED = 'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.'
MARKER = "autolocked-service-name"  # a service's name: it must not be readable in the store's files


def _restart(b: Berth) -> None:
    """What a machine's restart does to berth: every process of the suite goes, and comes back."""
    res = b.berth("down", "--exec-root", str(b.exec_root), timeout=60)
    assert res.returncode == 0, res.stderr
    b.up_detached()


def _state(b: Berth) -> str:
    return b.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").strip()


def _files_hold(root: Path, text: bytes) -> bool:
    return any(text in p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_an_autolocked_manager_is_locked_after_a_restart_until_unlocked(own_berth: Berth) -> None:
    b = own_berth
    image = b.import_busybox()
    init = b.docker_ok("swarm", "init", "--autolock", "--advertise-addr", "127.0.0.1",
                       "--listen-addr", f"127.0.0.1:{free_port()}")  # fmt: skip
    printed = re.search(r"SWMKEY-1-[A-Za-z0-9+/]{43}", init)
    assert printed is not None, init
    key = printed[0]
    try:
        assert b.docker_ok("swarm", "unlock-key", "-q").strip() == key
        assert b.docker_ok("info", "--format", "{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}").strip() == "true"
        b.docker_ok("service", "create", "--name", MARKER, "--replicas", "1", "--stop-grace-period", "1s",
                    image, "sleep", "1000", timeout=120)  # fmt: skip
        not_locked = b.docker("swarm", "unlock", input=key + "\n")
        assert not_locked.returncode == 1 and "swarm is not locked" in not_locked.stderr, not_locked.stderr

        # At rest: the store key wrapped (never in the clear), the state unreadable without it.
        bus = b.data_root / "nats"
        on_disk = json.loads((bus / "swarm-store-key.json").read_text())
        assert set(on_disk) == {"id", "wrapped", "kek"}, on_disk
        assert not _files_hold(bus / "swarm-server", MARKER.encode())

        _restart(b)
        info = json.loads(b.docker_ok("info", "--format", "{{json .Swarm}}"))  # as a scratch dockerd 20.10's
        assert (info["LocalNodeState"], info["NodeID"], info["NodeAddr"], info["Error"]) == ("locked", "", "127.0.0.1", LOCKED)
        for args in (("node", "ls"), ("service", "ls"), ("swarm", "unlock-key")):
            res = b.docker(*args)
            assert res.returncode == 1 and LOCKED in res.stderr, (args, res.stderr)
        bad = b.docker("swarm", "unlock", input="not-a-key\n")
        assert bad.returncode == 1 and "invalid key string" in bad.stderr, bad.stderr
        wrong = b.docker("swarm", "unlock", input="SWMKEY-1-" + "A" * 43 + "\n")
        assert wrong.returncode == 1 and "swarm could not be unlocked: invalid key provided" in wrong.stderr, wrong.stderr
        assert _state(b) == "locked"
        b.docker_ok("swarm", "unlock", input=key + "\n")
        assert _state(b) == "active"
        assert b.docker_ok("service", "ls", "--format", "{{.Name}}").split() == [MARKER]
        wait_until(lambda: b.docker_ok("service", "ls", "--format", "{{.Replicas}}").strip() == "1/1", 60,
                   "the service's task running again")  # fmt: skip

        # A new key: the old one no longer unlocks.
        rotated = b.docker_ok("swarm", "unlock-key", "--rotate", "-q").strip()
        assert rotated.startswith("SWMKEY-1-") and rotated != key
        wait_until(lambda: json.loads((bus / "swarm-store-key.json").read_text())["kek"] != on_disk["kek"], 10,
                   "the store key wrapped by the new unlock key")  # fmt: skip
        _restart(b)
        old = b.docker("swarm", "unlock", input=key + "\n")
        assert old.returncode == 1 and "invalid key provided" in old.stderr, old.stderr
        b.docker_ok("swarm", "unlock", input=rotated + "\n")

        # Autolock off: the store key in the clear again, a restart comes back unlocked.
        b.docker_ok("swarm", "update", "--autolock=false")
        none = b.docker("swarm", "unlock-key")
        assert none.returncode == 1 and "no unlock key is set" in none.stderr, none.stderr
        _restart(b)
        assert _state(b) == "active"
        assert b.docker_ok("service", "ls", "--format", "{{.Name}}").split() == [MARKER]
    finally:
        b.docker("swarm", "leave", "--force")
    assert not (b.data_root / "nats" / "swarm-store-key.json").exists()
