"""`--network container:`: moby's validateNetMode words and order, and the target's checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from berth_contracts.docker import (
    CreateRequest,
    EndpointSettings,
    HostConfig,
    NetworkingConfig,
    PortBinding,
)
from berth_contracts.errors import Conflict, InternalError, InvalidParameter, NotFound
from berth_engine.containers.records import Record, State
from berth_engine.containers.store import RecordStore
from berth_engine.networks import join as netjoin
from berth_engine.networks import links as netlinks


def _req(mode: str = "container:aa", **kw: object) -> CreateRequest:
    hc = HostConfig(network_mode=mode, **kw.pop("hc", {}))  # type: ignore[arg-type]
    return CreateRequest(image="busybox", host_config=hc, **kw)  # type: ignore[arg-type]


def test_check_network_mode_words_in_moby_order() -> None:
    netjoin.check_network_mode(_req())
    netjoin.check_network_mode(_req("bridge", hc={"dns": ["1.1.1.1"]}))
    cases: list[tuple[CreateRequest, str]] = [
        (_req("container:"), "Invalid network mode: invalid container format container:<name|id>"),
        # hostname comes first even with every other conflict present
        (_req(hostname="x", hc={"dns": ["1.1.1.1"], "links": ["a:b"]}), netjoin.CONFLICT_HOSTNAME),
        (_req(hc={"links": ["a:b"], "dns": ["1.1.1.1"]}), netjoin.CONFLICT_LINKS),
        (_req(hc={"dns": ["1.1.1.1"], "extra_hosts": ["a:1.2.3.4"]}), netjoin.CONFLICT_DNS),
        (_req(hc={"extra_hosts": ["a:1.2.3.4"]}), netjoin.CONFLICT_HOSTS),
        (_req(mac_address="02:42:ac:11:00:02"), netjoin.CONFLICT_MAC),
        (
            _req(networking_config=NetworkingConfig(
                endpoints_config={"container:aa": EndpointSettings(mac_address="02:42:ac:11:00:02")}
            )),
            netjoin.CONFLICT_MAC,
        ),  # fmt: skip
        (_req(hc={"port_bindings": {"80/tcp": [PortBinding(host_port="8080")]}}), netjoin.CONFLICT_PUBLISH),
        (_req(hc={"publish_all_ports": True}), netjoin.CONFLICT_PUBLISH),
        (_req(exposed_ports={"80/tcp": {}}), netjoin.CONFLICT_EXPOSE),
        (_req("host", hc={"links": ["a:b"]}), netjoin.CONFLICT_HOST_LINKS),
    ]  # fmt: skip
    for req, words in cases:
        with pytest.raises(InvalidParameter) as err:
            netjoin.check_network_mode(req)
        assert err.value.message == words


def test_target_resolved_at_create_and_checked_at_start(
    tmp_path: Path, make_record: Callable[..., Record]
) -> None:
    async def main() -> None:
        store = RecordStore(tmp_path / "engine.db")
        aa = make_record("aa")
        await store.insert(aa)
        assert netjoin.resolve_at_create(store, "container:aa") == f"container:{aa.id}"
        assert netjoin.resolve_at_create(store, "container:nosuch") == "container:nosuch"
        assert netjoin.resolve_at_create(store, "bridge") == "bridge"
        joiner = make_record("j", _req(f"container:{aa.id}"))
        with pytest.raises(Conflict) as err:
            netjoin.joined_container(store, joiner)
        assert err.value.message == f"cannot join network of a non running container: {aa.id}"
        aa.state = State(status="running", pid=1)
        assert netjoin.joined_container(store, joiner) is aa
        netjoin.join(joiner, aa)
        assert joiner.config.hostname == aa.config.hostname
        with pytest.raises(NotFound, match="No such container: gone"):
            netjoin.joined_container(store, make_record("k", _req("container:gone")))
        with pytest.raises(InternalError, match="cannot join own network"):
            netjoin.joined_container(
                store, make_record("aa2", _req(f"container:{aa.id}"), cid=aa.id)
            )
        store.close()

    anyio.run(main)


def test_link_env_as_moby() -> None:
    """moby's Link.ToEnv: default port, contiguous ranges, per-port variables, name, env."""
    env = netlinks.link_env(
        "/web/my-db", "10.0.0.2", ["HOME=/root", "PATH=/bin", "USER=alice", "BARE"],
        {"5432/tcp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}, "53/udp": {}, "53/tcp": {}},
    )  # fmt: skip
    assert env[0] == "MY_DB_PORT=tcp://10.0.0.2:53"
    ranged = [e for e in env if "_START" in e or "_END" in e]
    assert ranged == [
        "MY_DB_PORT_8000_TCP_START=tcp://10.0.0.2:8000",
        "MY_DB_PORT_8000_TCP_PORT_START=8000",
        "MY_DB_PORT_8000_TCP_END=tcp://10.0.0.2:8002",
        "MY_DB_PORT_8000_TCP_PORT_END=8002",
    ]
    assert env.index("MY_DB_PORT_53_TCP=tcp://10.0.0.2:53") < env.index(
        "MY_DB_PORT_53_UDP=udp://10.0.0.2:53"
    )
    assert "MY_DB_PORT_5432_TCP_ADDR=10.0.0.2" in env
    assert env[-2:] == ["MY_DB_NAME=/web/my-db", "MY_DB_ENV_USER=alice"]
    assert netlinks.parse_link("/db:/web/pg") == ("db", "pg")
    assert netlinks.parse_link("db") == ("db", "db")
    with pytest.raises(InvalidParameter, match="bad format for links: a:b:c"):
        netlinks.parse_link("a:b:c")


def test_bridge_config_checks(tmp_path: Path) -> None:
    from berth_contracts.errors import Forbidden, InternalError, NotImplementedByBerth
    from berth_contracts.networks import IpamPool, NetworkCreate
    from berth_engine.networks.options import bridge_config
    from berth_engine.networks.store import NetworkStore

    nets = NetworkStore(tmp_path / "nets")
    pool = IpamPool(
        subnet="10.77.0.0/24", ip_range="10.77.0.128/25", aux_addresses={"a": "10.77.0.3"}
    )
    got = bridge_config(
        NetworkCreate(name="n", pools=[pool], options={"com.docker.network.driver.mtu": "1400"}),
        nets,
    )
    assert (got.subnet, got.ip_range, got.aux_addresses, got.mtu) == (
        "10.77.0.0/24", "10.77.0.128/25", {"a": "10.77.0.3"}, 1400
    )  # fmt: skip
    # dockerd 20.10 (a scratch one): the pool's network address, and an IPv4 pool's broadcast
    # address, are not free for the gateway.
    for subnet, gateway in (("10.77.0.0/24", "10.77.0.0"), ("10.77.0.0/24", "10.77.0.255"),
                            ("fd42:abcd:2::/64", "fd42:abcd:2::")):  # fmt: skip
        with pytest.raises(InternalError, match=rf"^failed to allocate gateway \({gateway}\): Address already in use$"):
            bridge_config(NetworkCreate(name="n", pools=[IpamPool(subnet=subnet, gateway=gateway)]), nets)
    assert bridge_config(
        NetworkCreate(name="n", pools=[IpamPool(subnet="10.77.0.0/24", gateway="10.77.0.254")]), nets
    ).gateway == "10.77.0.254"
    two = [IpamPool(subnet="10.77.0.0/24"), IpamPool(subnet="10.78.0.0/24")]
    with pytest.raises(Forbidden, match="bridge driver doesn't support multiple subnets"):
        bridge_config(NetworkCreate(name="n", pools=two), nets)
    with pytest.raises(Forbidden, match="sub-pool"):
        bridge_config(
            NetworkCreate(
                name="n", pools=[IpamPool(subnet="10.77.0.0/24", ip_range="10.9.0.0/25")]
            ),
            nets,
        )
    with pytest.raises(NotImplementedByBerth):
        bridge_config(
            NetworkCreate(name="n", options={"com.docker.network.bridge.enable_icc": "false"}), nets
        )
    with pytest.raises(InvalidParameter):
        bridge_config(
            NetworkCreate(name="n", options={"com.docker.network.bridge.name": "x" * 16}), nets
        )
