"""A node's silence as the leader counts it: the time no heartbeat could be recorded (the
managers electing, the state moving into a cluster) is not the node's."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from berth_orchestrator.lease import Leadership, heard_until
from berth_orchestrator.records import DOWN_AFTER, NodeRecord, node_ready
from berth_orchestrator.restore import Kept, Restore
from berth_orchestrator.store import Snapshot, SwarmStore


def test_an_outage_is_taken_out_of_a_nodes_silence() -> None:
    outage = (100.0, 108.0)
    assert heard_until(110.0, outage) == 110.0  # heard after it: as it was
    assert heard_until(104.0, outage) == 108.0  # heard during it: as if at its end
    assert heard_until(99.0, outage) == 107.0  # silent before it: the outage's length later
    assert heard_until(50.0, (0.0, 0.0)) == 50.0  # no outage yet


def _nodes(**last_seen: tuple[str, float]) -> Snapshot:
    snap = Snapshot()
    for name, (role, seen) in last_seen.items():
        snap.nodes[name] = NodeRecord(id=name, berth_node=name, hostname=name, created_at="", updated_at="",
                                      role=role, last_seen=seen)  # fmt: skip
    return snap


def test_a_lost_manager_takes_no_other_node_with_it() -> None:
    async def announce() -> None:
        pass

    leader = Leadership(cast(SwarmStore, None), "m1", announce)
    # m2 lost at 100; w1's beat was on its way through it (heard last at 99, the next one
    # only after the lost one's timeout); w2 has been Down since before.
    now = 100.0 + DOWN_AFTER + 0.5
    snap = _nodes(m1=("manager", now), m2=("manager", 100.0), w1=("worker", 99.0), w2=("worker", 50.0))
    leader._down = {"w2"}
    leader.excuse_manager_loss(snap, now)
    ready = {n.id for n in snap.nodes.values() if node_ready(n, now)}
    assert ready == {"m1", "w1"}  # m2 Down, w1 counted as heard when m2 was found lost
    # The excuse holds at the next cycles (the snapshot is read afresh each time) but does not
    # last: w1 silent for DOWN_AFTER more is Down; m2 and w2 are never excused.
    later = now + DOWN_AFTER - 1
    snap = _nodes(m1=("manager", later), m2=("manager", 100.0), w1=("worker", 99.0), w2=("worker", 50.0))
    leader._down = {"m2", "w2"}
    leader.excuse_manager_loss(snap, later)
    assert {n.id for n in snap.nodes.values() if node_ready(n, later)} == {"m1", "w1"}
    latest = now + DOWN_AFTER + 1
    snap = _nodes(m1=("manager", latest), m2=("manager", 100.0), w1=("worker", 99.0), w2=("worker", 50.0))
    leader.excuse_manager_loss(snap, latest)
    assert {n.id for n in snap.nodes.values() if node_ready(n, latest)} == {"m1"}


def test_the_leaders_own_silence_is_the_states() -> None:
    async def announce() -> None:
        pass

    leader = Leadership(cast(SwarmStore, None), "m1", announce)
    now = 200.0
    # Its own engine's beats not written for 10 s: the others' 10 s silence is not theirs;
    # one silent long before is still Down.
    snap = _nodes(m1=("manager", now - 10), m2=("manager", now - 10), w1=("worker", now - 12), w2=("worker", now - 30))
    leader.excuse_own_silence(snap, now)
    assert {n.id for n in snap.nodes.values() if node_ready(n, now)} == {"m1", "m2", "w1"}
    # Its own engine silent past OWN_SILENCE_MAX (stopped): nothing is excused.
    snap = _nodes(m1=("manager", now - 25), m2=("manager", now - 10))
    leader.excuse_own_silence(snap, now)
    assert {n.id for n in snap.nodes.values() if node_ready(n, now)} == set()


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
