"""Network records, subnets, addresses and published ports (no netavark involved)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from berth_contracts.docker import (
    ContainerConfig,
    CreateRequest,
    EndpointIPAMConfig,
    EndpointSettings,
    HostConfig,
    NetworkingConfig,
    PortBinding,
)
from berth_contracts.errors import InvalidParameter, NotFound
from berth_engine.containers.records import Record, State
from berth_engine.containers.store import RecordStore
from berth_engine.networks.controller import NetworkService, network_settings
from berth_engine.networks.store import NetworkStore


@pytest.fixture
def svc(tmp_path: Path) -> NetworkService:
    return NetworkService(NetworkStore(tmp_path / "networks"), RecordStore(tmp_path / "engine.db"))


def test_predefined_networks_persist(tmp_path: Path) -> None:
    first = NetworkStore(tmp_path / "n")
    bridge = first.by_name("bridge")
    assert bridge is not None and bridge.driver == "bridge" and not bridge.dns_enabled
    assert ipaddress.ip_network(bridge.subnet).subnet_of(ipaddress.ip_network("10.213.0.0/16"))  # type: ignore[arg-type]
    again = NetworkStore(tmp_path / "n")
    assert again.by_name("bridge").id == bridge.id  # type: ignore[union-attr]
    assert {n.name for n in again.all()} == {"bridge", "host", "none"}


def test_endpoints_and_ports(svc: NetworkService) -> None:
    user = svc.nets.new_record("front", "bridge", subnet="10.213.250.0/24", user_ipam=True)
    svc.nets.add(user)
    hc = HostConfig(
        network_mode="front",
        port_bindings={"80/tcp": [PortBinding(host_ip="127.0.0.1", host_port="")]},
    )
    nc = NetworkingConfig(
        endpoints_config={
            "front": EndpointSettings(
                aliases=["www"], ipam_config=EndpointIPAMConfig(ipv4_address="10.213.250.9")
            )
        }
    )
    [ep] = svc.endpoints_for_create(hc, nc)
    assert (ep.ip, ep.gateway, ep.prefix_len, ep.aliases) == (
        "10.213.250.9",
        "10.213.250.1",
        24,
        ["www"],
    )
    rec = Record(
        id="c" * 64, name="web", created="", request=CreateRequest(image="x"),
        config=ContainerConfig(exposed_ports={"80/tcp": {}}), host_config=hc, path="true",
        args=[], image_id="", image_name="x", node="n", endpoints=[ep],
    )  # fmt: skip
    [att], [pm] = svc.attach(rec)
    assert att.aliases == ["web", "www", "c" * 12] and att.dns_enabled
    assert pm.host_ip == "127.0.0.1" and pm.host_port > 0 and pm.container_port == 80
    rec.state = State(status="running", pid=1)
    ns = network_settings(rec)
    assert ns.ports["80/tcp"][0].host_port == str(pm.host_port)  # type: ignore[index]
    assert ns.networks["front"].ip_address == "10.213.250.9"


def test_errors(svc: NetworkService) -> None:
    with pytest.raises(NotFound):
        svc.validate_mode("nosuchnet")
    nc = NetworkingConfig(
        endpoints_config={
            "bridge": EndpointSettings(ipam_config=EndpointIPAMConfig(ipv4_address="10.1.1.1"))
        }
    )
    with pytest.raises(InvalidParameter) as err:
        svc.endpoints_for_create(HostConfig(network_mode="default"), nc)
    assert "user configured subnets" in err.value.message
