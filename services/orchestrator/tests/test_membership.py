"""What crosses between swarm nodes: join tokens, the leaf users a manager admits, addresses."""

from __future__ import annotations

import pytest
from berth_contracts.errors import InvalidParameter
from berth_orchestrator import ids
from berth_orchestrator.membership import (
    check_password_hash,
    hash_password,
    host_port,
    join_user,
    manager_bus,
    parse_token,
)
from berth_orchestrator.records import ClusterRecord, NodeRecord


def _cluster() -> ClusterRecord:
    return ClusterRecord(
        id=ids.new_id(), created_at="", updated_at="", spec={}, ca_digest=ids.new_ca_digest(),
        worker_secret=ids.new_secret(), manager_secret=ids.new_secret(),
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


def test_a_manager_admits_both_tokens_joiners_and_each_worker_on_its_own_subjects() -> None:
    cluster = _cluster()
    hashed = hash_password("pw")
    nodes = [
        NodeRecord(id="m1", berth_node="a", hostname="a", created_at="", updated_at="", role="manager"),
        NodeRecord(id="w1", berth_node="b", hostname="b", created_at="", updated_at="", role="worker",
                   leaf_password_hash=hashed),
        NodeRecord(id="w2", berth_node="c", hostname="c", created_at="", updated_at="", role="worker"),  # left
    ]  # fmt: skip
    bus = manager_bus("0.0.0.0:2377", cluster, nodes)
    users = {u.user: u for u in bus.users}
    assert set(users) == {join_user(cluster.worker_secret)[0], join_user(cluster.manager_secret)[0], "node-w1"}
    w1 = users["node-w1"]
    assert (w1.password, w1.publish) == (hashed, ("berth.swarm.v1.node.w1",))
    assert w1.subscribe == ("berth.swarm.v1.changed", "berth.swarm.v1.assigned.w1.>")
    joiner = users[join_user(cluster.worker_secret)[0]]
    assert (joiner.publish, joiner.subscribe) == (("berth.swarm.v1.join",), ("berth.swarm.v1.joined.>",))


def test_addresses_read_as_dockerd_reads_them() -> None:
    assert host_port("10.0.0.1") == ("10.0.0.1", 2377)
    assert host_port("10.0.0.1:4000") == ("10.0.0.1", 4000)
    assert host_port("[fd00::1]:4000") == ("fd00::1", 4000)
    with pytest.raises(InvalidParameter):
        host_port("10.0.0.1:http")
