"""A node's silence as the leader counts it: the time no heartbeat could be recorded (the
managers electing, the state moving into a cluster) is not the node's."""

from __future__ import annotations

from pathlib import Path

from berth_orchestrator.lease import heard_until
from berth_orchestrator.restore import Kept, Restore


def test_an_outage_is_taken_out_of_a_nodes_silence() -> None:
    outage = (100.0, 108.0)
    assert heard_until(110.0, outage) == 110.0  # heard after it: as it was
    assert heard_until(104.0, outage) == 108.0  # heard during it: as if at its end
    assert heard_until(99.0, outage) == 107.0  # silent before it: the outage's length later
    assert heard_until(50.0, (0.0, 0.0)) == 50.0  # no outage yet


def test_the_state_kept_for_a_move_round_trips_privately(tmp_path: Path) -> None:
    restore = Restore(tmp_path / "swarm-restore.json")
    assert restore.load() is None and not restore.pending()
    entries = {"cluster": b'{"id": "c"}', "node.n1": b"\x00\xffbinary"}
    restore.save(entries, 2)
    assert restore.load() == Kept(entries, 2, "cluster") and restore.pending()
    assert restore.path.stat().st_mode & 0o777 == 0o600
    restore.save(entries, 1, into="one")  # one of two managers demoted: back to a server alone
    assert restore.load() == Kept(entries, 1, "one")
    restore.done()
    assert restore.load() is None and not restore.path.exists()
