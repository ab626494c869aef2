"""What crosses between swarm nodes: join tokens, the leaf users a manager admits, addresses."""

from __future__ import annotations

from pathlib import Path

import pytest
from berth_contracts.errors import InvalidParameter
from berth_orchestrator import ids, swarmca
from berth_orchestrator.membership import (
    cert_digest,
    check_password_hash,
    hash_password,
    host_port,
    join_user,
    manager_server,
    parse_token,
)
from berth_orchestrator.records import ClusterRecord, NodeRecord


def _cluster() -> ClusterRecord:
    return ClusterRecord(
        id=ids.new_id(), created_at="", updated_at="", spec={}, ca_digest=swarmca.digest(swarmca.new_ca()[0]),
        worker_secret=ids.new_secret(), manager_secret=ids.new_secret(), route_user="route-x",
        route_password="route-secret",
    )  # fmt: skip


def test_a_token_parses_into_its_parts_and_nonsense_is_refused() -> None:
    cluster = _cluster()
    token = ids.join_token(cluster.ca_digest, cluster.worker_secret)
    assert parse_token(token) == (cluster.ca_digest, cluster.worker_secret)
    for bad in ("", "SWMTKN-1-nonsense", token + "x", token.replace("SWMTKN-1", "SWMTKN-2")):
        with pytest.raises(InvalidParameter, match="invalid join token"):
            parse_token(bad)


def test_both_ends_derive_the_same_join_user_and_another_secret_another() -> None:
    user, password = join_user("a" * 25)
    assert (user, password) == join_user("a" * 25)
    assert user.startswith("join-") and password not in user
    assert join_user("b" * 25)[0] != user


def test_only_a_bcrypt_hash_reaches_the_config() -> None:
    good = hash_password("pw")
    assert check_password_hash(good) == good
    for bad in ("pw", good + '"', '", permissions: {}}', good[:-1] + "}"):
        with pytest.raises(InvalidParameter):
            check_password_hash(bad)


def test_a_manager_admits_both_tokens_joiners_and_each_worker_on_its_own_subjects(tmp_path: Path) -> None:
    cluster = _cluster()
    hashed = hash_password("pw")
    nodes = [
        NodeRecord(id="m1", berth_node="a", hostname="a", created_at="", updated_at="", role="manager",
                   listen="0.0.0.0:2377", addr="10.0.0.1", routes_at="10.0.0.1:2378"),
        NodeRecord(id="w1", berth_node="b", hostname="b", created_at="", updated_at="", role="worker",
                   leaf_password_hash=hashed),
        NodeRecord(id="w2", berth_node="c", hostname="c", created_at="", updated_at="", role="worker"),  # left
    ]  # fmt: skip
    server = manager_server(nodes[0], cluster, nodes, None, tmp_path, "", "k1")
    users = {u.user: u for u in server.users}
    worker_join, manager_join = join_user(cluster.worker_secret)[0], join_user(cluster.manager_secret)[0]
    assert set(users) == {worker_join, manager_join, "node-w1"}
    w1 = users["node-w1"]
    # Its session, and its tasks' log streams (`docker service logs` on a manager).
    assert (w1.password, w1.publish) == (hashed, ("berth.swarm.v1.node.w1", "berth.swarm.v1.node.w1.>"))
    assert w1.subscribe == ("berth.swarm.v1.changed", "berth.swarm.v1.assigned.w1.>")
    # Each token's joiners read only the answers to their own token's joins: a manager's
    # answer carries the route credentials, which a worker token must not open.
    joiner = users[worker_join]
    assert (joiner.publish, joiner.subscribe) == (("berth.swarm.v1.join",), (f"berth.swarm.v1.joined.{worker_join}.>",))
    assert users[manager_join].subscribe == (f"berth.swarm.v1.joined.{manager_join}.>",)
    # One manager: no cluster, no routes, no route credentials in its configuration.
    assert (server.cluster, server.routes, server.route_password) == ("", (), "")
    assert server.store == str(tmp_path / "solo") and server.listen == "0.0.0.0:2377"


def test_a_second_manager_makes_a_cluster_that_stays_one(tmp_path: Path) -> None:
    cluster = _cluster()
    m1 = NodeRecord(id="m1", berth_node="a", hostname="a", created_at="", updated_at="", role="manager",
                    listen="0.0.0.0:2377", addr="10.0.0.1", routes_at="10.0.0.1:2378")  # fmt: skip
    m2 = NodeRecord(id="m2", berth_node="b", hostname="b", created_at="", updated_at="", role="manager",
                    listen="0.0.0.0:2377", addr="10.0.0.2", routes_at="10.0.0.2:2378")  # fmt: skip
    alone = manager_server(m1, cluster, [m1], None, tmp_path, "", "k1")
    pair = manager_server(m1, cluster, [m1, m2], alone, tmp_path, "", "k1")
    assert pair.routes == ("10.0.0.2:2378",) and pair.cluster.startswith("berth-")
    assert (pair.cluster_listen, pair.cluster_advertise) == ("0.0.0.0:2378", "10.0.0.1:2378")
    assert (pair.route_user, pair.route_password) == ("route-x", "route-secret")
    assert pair.store == str(tmp_path / "cluster") and pair.restart_needed(alone)
    # Its own client port and password are kept: the orchestrator's link stays valid.
    assert (pair.client_port, pair.client_password) == (alone.client_port, alone.client_password)
    # The other manager gone from the state: still a cluster (its store is the cluster's).
    assert manager_server(m1, cluster, [m1], pair, tmp_path, "", "k1").cluster == pair.cluster


def test_routes_admit_the_managers_keys_and_a_demoted_ones_until_it_left_the_cluster(tmp_path: Path) -> None:
    ca, ca_key = swarmca.new_ca()
    cluster = _cluster()

    def manager(i: int, **kw: object) -> NodeRecord:
        _, request = swarmca.new_key_and_request([f"10.0.0.{i}"])
        node = NodeRecord(id=f"m{i}", berth_node=f"h{i}", hostname=f"h{i}", created_at="", updated_at="",
                          role="manager", listen="0.0.0.0:2377", addr=f"10.0.0.{i}", routes_at=f"10.0.0.{i}:2378",
                          cert=swarmca.sign(ca, ca_key, request, f"m{i}", cluster.id))  # fmt: skip
        for key, value in kw.items():
            setattr(node, key, value)
        return node

    m1, m2, m3 = manager(1), manager(2), manager(3)
    pin = {n.id: swarmca.key_pin(n.cert) for n in (m1, m2, m3)}
    three = manager_server(m1, cluster, [m1, m2, m3], None, tmp_path, "/tls", "k1")
    assert three.route_pins == tuple(sorted(pin.values()))
    assert three.cert_digest and three.cert_digest == cert_digest(m1.cert)  # renewed: another, so a reload
    # m3 demoted: its route and its key stay until its server has left JetStream's cluster.
    leaving = manager(3, role="worker", leaving_cluster=True, cert=m3.cert)
    assert manager_server(m1, cluster, [m1, m2, leaving], three, tmp_path, "/tls", "k1").route_pins == three.route_pins
    gone = manager(3, role="worker", cert=m3.cert)
    two = manager_server(m1, cluster, [m1, m2, gone], three, tmp_path, "/tls", "k1")
    assert two.route_pins == tuple(sorted((pin["m1"], pin["m2"]))) and not two.restart_needed(three)
    # No TLS (a swarm older than berth's TLS), or no routes yet: nothing to pin.
    assert manager_server(m1, cluster, [m1, m2, m3], None, tmp_path, "", "k1").route_pins == ()
    assert manager_server(m1, cluster, [m1], None, tmp_path, "/tls", "k1").route_pins == ()


def test_addresses_read_as_dockerd_reads_them() -> None:
    assert host_port("10.0.0.1") == ("10.0.0.1", 2377)
    assert host_port("10.0.0.1:4000") == ("10.0.0.1", 4000)
    assert host_port("[fd00::1]:4000") == ("fd00::1", 4000)
    with pytest.raises(InvalidParameter):
        host_port("10.0.0.1:http")


def test_a_promoted_worker_keeps_its_session_until_it_serves_as_a_manager(tmp_path: Path) -> None:
    from berth_orchestrator.dispatcher import promotion
    from berth_orchestrator.store import Snapshot

    cluster = _cluster()
    m1 = NodeRecord(id="m1", berth_node="a", hostname="a", created_at="", updated_at="", role="manager",
                    listen="0.0.0.0:2377", addr="10.0.0.1", routes_at="10.0.0.1:2378")  # fmt: skip
    w1 = NodeRecord(id="w1", berth_node="b", hostname="b", created_at="", updated_at="", role="manager",
                    listen="0.0.0.0:2377", addr="10.0.0.2", routes_at="10.0.0.2:2378",
                    leaf_password_hash=hash_password("pw"))  # fmt: skip
    server = manager_server(m1, cluster, [m1, w1], None, tmp_path, "", "k1")
    assert "node-w1" in {u.user for u in server.users}  # the promotion reaches it over its session
    assert server.routes == ("10.0.0.2:2378",)  # and the route to it is ready
    snap = Snapshot(cluster=cluster, nodes={"m1": m1, "w1": w1})
    told = promotion(snap, w1)
    assert told is not None and told.routes == ["10.0.0.1:2378"] and told.cluster == server.cluster
    assert (told.route_user, told.route_password) == ("route-x", "route-secret")
    assert "route-secret" not in repr(told)


def test_a_demoted_managers_server_leaves_once_it_stepped_down_not_on_a_promotions_leftover() -> None:
    from berth_orchestrator.swarmlink import STEP_DOWN_WITHIN, stepped_down

    now = 1000.0
    worker_hash = hash_password("as-a-worker")

    def demoted(hash_then: str, hash_now: str, last_seen: float = now) -> NodeRecord:
        return NodeRecord(id="m2", berth_node="b", hostname="b", created_at="", updated_at="", role="worker",
                          leaving_cluster=True, leaving_since=now - 1, hash_at_demotion=hash_then,
                          leaf_password_hash=hash_now, last_seen=last_seen)  # fmt: skip

    assert not stepped_down(demoted("", ""), now)  # still moving to its worker's link
    assert stepped_down(demoted("", worker_hash), now)  # its link's password written
    # Promoted, then demoted before its first beat as a manager: the hash it still has is its
    # old session's. Its server is a peer: it must stay until the node read its demotion there.
    assert not stepped_down(demoted(worker_hash, worker_hash), now)
    assert stepped_down(demoted(worker_hash, hash_password("a new one")), now)
    assert stepped_down(demoted(worker_hash, worker_hash), now + STEP_DOWN_WITHIN + 1)  # never told
    assert stepped_down(demoted("", "", last_seen=now - 3600), now)  # down


def test_a_demoted_manager_keeps_its_key_but_not_its_certificate(tmp_path: Path) -> None:
    from berth_kit.swarmbus import LeafRemote
    from berth_orchestrator.membership import Membership

    membership = Membership(tmp_path / "swarm.json")
    ca, ca_key = swarmca.new_ca()
    key, request = swarmca.new_key_and_request(["10.0.0.2"])
    membership.tls.write_ca(ca)
    membership.tls.write_key(key)
    membership.tls.write_cert(swarmca.sign(ca, ca_key, request, "m2", "c1"), ca)
    link = LeafRemote(("10.0.0.1:2377",), "node-m2", "pw", str(membership.tls.ca))
    membership.stepped_down(link, {"node_id": "m2"})
    assert membership.read().remote == link and membership.read().server is None
    assert not membership.tls.cert.exists() and membership.tls.key.exists() and membership.tls.ca.exists()
    assert membership.server_tls() == ""
