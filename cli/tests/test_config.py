from __future__ import annotations

from pathlib import Path

import pytest
from berth_cli.config import (
    SERVICES,
    ServiceSpec,
    UsageError,
    build_parser,
    services_from_env,
    up_config,
    validate_host,
)


def parse_up(*args: str):
    return up_config(build_parser().parse_args(["up", *args]))


def test_up_defaults() -> None:
    cfg = parse_up()
    assert not cfg.detach
    assert cfg.hosts == ("unix:///run/berth/docker.sock",)
    assert cfg.data_root == Path("/var/lib/berth")
    assert cfg.exec_root == Path("/run/berth")
    assert cfg.nats_port == 4222
    assert cfg.nats_url == ""
    assert cfg.state_path == Path("/run/berth/berth.json")
    assert cfg.log_path == Path("/run/berth/berth.log")
    assert [s.module for s in cfg.services] == [
        "berth_engine",
        "berth_lifecycle",
        "berth_agent",
        "berth_registry_proxy",
        "berth_builder",
        "berth_orchestrator",
        "berth_gateway",
    ]


def test_up_all_flags() -> None:
    cfg = parse_up(
        "-d",
        "-H",
        "unix:///tmp/x/d.sock",
        "--host",
        "tcp://127.0.0.1:2375",
        "--data-root",
        "/srv/data",
        "--exec-root",
        "/srv/run",
        "--nats-port",
        "0",
    )
    assert cfg.detach
    assert cfg.hosts == ("unix:///tmp/x/d.sock", "tcp://127.0.0.1:2375")
    assert cfg.docker_host == "unix:///tmp/x/d.sock"
    assert cfg.data_root == Path("/srv/data")
    assert cfg.exec_root == Path("/srv/run")
    assert cfg.nats_port == 0


def test_default_socket_does_not_follow_exec_root() -> None:
    # As with dockerd's --exec-root: the socket is only moved by -H.
    assert parse_up("--exec-root", "/tmp/r").hosts == ("unix:///run/berth/docker.sock",)


def test_external_nats() -> None:
    assert parse_up("--nats-url", "nats://10.0.0.1:4222").nats_url == "nats://10.0.0.1:4222"
    with pytest.raises(UsageError):
        parse_up("--nats-url", "http://x")


@pytest.mark.parametrize(
    "host",
    ["unix://relative.sock", "tcp://nohost", "tcp://h:99999", "http://h:1", "/abs.sock", "unix:///" + "a" * 120],
)
def test_bad_hosts(host: str) -> None:
    with pytest.raises(UsageError):
        validate_host(host)


def test_tcp_host_normalized() -> None:
    assert validate_host("tcp://0.0.0.0:2375/") == "tcp://0.0.0.0:2375"


def test_down_and_status_parse() -> None:
    p = build_parser()
    ns = p.parse_args(["down", "--exec-root", "/x"])
    assert (ns.command, ns.exec_root) == ("down", "/x")
    ns = p.parse_args(["status", "--json"])
    assert (ns.command, ns.json, ns.exec_root) == ("status", True, "/run/berth")


def test_no_command_is_an_error() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([])


def test_services_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BERTH_SUPERVISE", raising=False)
    assert services_from_env() == SERVICES
    monkeypatch.setenv("BERTH_SUPERVISE", "a=m.a, b=m.b")
    assert services_from_env() == (ServiceSpec("a", "m.a"), ServiceSpec("b", "m.b"))
    monkeypatch.setenv("BERTH_SUPERVISE", "broken")
    with pytest.raises(ValueError):
        services_from_env()


def test_engine_labels_as_dockerd_takes_them() -> None:
    cfg = parse_up("--label", "zone=b", "--label", "disk=ssd=fast")
    assert cfg.labels == ("zone=b", "disk=ssd=fast")
    for bad in ("zone", "=b"):
        with pytest.raises(UsageError, match="bad attribute format"):
            parse_up("--label", bad)
    from berth_cli.daemon import supervisor_argv

    assert parse_up(*supervisor_argv(cfg)[4:]).labels == cfg.labels  # `up -d` passes them on


def test_node_generic_resources_as_dockerd_takes_them() -> None:
    """dockerd's --node-generic-resource, checked as swarmkit's genericresource.Parse."""
    cfg = parse_up("--node-generic-resource", "gpu=UUID1", "--node-generic-resource", "gpu=UUID2",
                   "--node-generic-resource", "fpga=2")  # fmt: skip
    assert cfg.node_generic_resources == ("gpu=UUID1", "gpu=UUID2", "fpga=2")
    for bad, words in (("gpu", "missing '='"), ("gpu=-1", "negative resource gpu")):
        with pytest.raises(UsageError, match=words):
            parse_up("--node-generic-resource", bad)
    with pytest.raises(UsageError, match="mixed discrete and named resources"):
        parse_up("--node-generic-resource", "gpu=1", "--node-generic-resource", "gpu=UUID")
    from berth_cli.daemon import supervisor_argv

    assert parse_up(*supervisor_argv(cfg)[4:]).node_generic_resources == cfg.node_generic_resources
