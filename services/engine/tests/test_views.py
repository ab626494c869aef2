from collections.abc import Callable

from berth_common.gotime import parse_ns, rfc3339nano
from berth_contracts.docker import ZERO_TIME, CreateRequest, HostConfig
from berth_engine.containers import views
from berth_engine.containers.records import Record
from berth_engine.containers.timefmt import human_duration

S = 1_000_000_000


def test_rfc3339nano_round_trip() -> None:
    ns = 1_700_000_000_123_456_789
    text = rfc3339nano(ns)
    assert text == "2023-11-14T22:13:20.123456789Z"
    assert parse_ns(text) == ns
    assert rfc3339nano(1_700_000_000 * S) == "2023-11-14T22:13:20Z"
    assert rfc3339nano(1_700_000_000 * S + 500_000_000) == "2023-11-14T22:13:20.5Z"
    assert parse_ns("2023-11-14T23:13:20.5+01:00") == 1_700_000_000 * S + 500_000_000
    assert parse_ns(ZERO_TIME) == 0


def test_human_duration() -> None:
    assert human_duration(0.5) == "Less than a second"
    assert human_duration(1) == "1 second"
    assert human_duration(3) == "3 seconds"
    assert human_duration(60) == "About a minute"
    assert human_duration(150) == "2 minutes"
    assert human_duration(3600) == "About an hour"
    assert human_duration(5 * 3600) == "5 hours"
    assert human_duration(3 * 86400) == "3 days"
    assert human_duration(20 * 86400) == "2 weeks"
    assert human_duration(90 * 86400) == "3 months"
    assert human_duration(800 * 86400) == "2 years"


def test_status_text(make_record: Callable[..., Record]) -> None:
    rec = make_record("web")
    now = 1_700_000_100 * S
    assert views.status_text(rec, now) == "Created"
    rec.state.status = "running"
    rec.state.started_at = rfc3339nano(now - 3 * S)
    assert views.status_text(rec, now) == "Up 3 seconds"
    rec.state.status = "paused"
    assert views.status_text(rec, now) == "Up 3 seconds (Paused)"
    rec.state.status = "exited"
    rec.state.exit_code = 137
    rec.state.finished_at = rfc3339nano(now - 2 * S)
    assert views.status_text(rec, now) == "Exited (137) 2 seconds ago"
    # A start that failed leaves StartedAt zero: still "Created", as in Docker.
    failed = make_record("bad")
    failed.state.exit_code = 127
    failed.state.error = "boom"
    assert views.status_text(failed, now) == "Created"


def test_command_line(make_record: Callable[..., Record]) -> None:
    assert views.command_line(make_record("a")) == "echo hello"
    rec = make_record("b", CreateRequest(image="busybox", cmd=["sh", "-c", "echo a b"]))
    assert views.command_line(rec) == "sh -c 'echo a b'"
    assert (
        views.command_line(make_record("c", CreateRequest(image="busybox", cmd=["top"]))) == "top"
    )


def test_inspect_and_summary(make_record: Callable[..., Record]) -> None:
    rec = make_record(
        "web",
        CreateRequest(image="busybox", cmd=["echo", "hello"], labels={"x": "1"},
                      host_config=HostConfig(network_mode="default", auto_remove=True)),
    )  # fmt: skip
    doc = views.inspect(rec)
    assert doc.name == "/web"
    assert (doc.path, doc.args) == ("echo", ["hello"])
    assert doc.image.startswith("sha256:")
    assert doc.config.image == "busybox"
    assert doc.state.status == "created" and not doc.state.running
    assert doc.state.started_at == ZERO_TIME and doc.state.finished_at == ZERO_TIME
    assert doc.host_config.network_mode == "bridge"
    assert doc.host_config.log_config.type == "json-file"
    assert doc.driver == "overlay2"
    assert doc.mounts == []
    item = views.summary(rec)
    assert item.names == ["/web"]
    assert item.command == "echo hello"
    assert item.image == "busybox" and item.image_id == rec.image_id
    assert item.labels == {"x": "1"}
    assert item.status == "Created" and item.state == "created"
    assert isinstance(item.created, int) and item.created > 1_700_000_000
    ref = views.ref(rec)
    assert (ref.id, ref.name, ref.status, ref.auto_remove) == (rec.id, "web", "created", True)


def test_exposed_ports_show_while_running(make_record: Callable[..., Record]) -> None:
    req = CreateRequest(image="nginx", cmd=["x"], exposed_ports={"80/tcp": {}, "53/udp": {}})
    rec = make_record("ports", req)
    assert views.summary(rec).ports == []
    assert views.inspect(rec).network_settings.ports == {}
    rec.state.status = "running"
    ports = views.summary(rec).ports
    assert [(p.PrivatePort, p.Type, p.PublicPort) for p in ports] == [
        (53, "udp", None),
        (80, "tcp", None),
    ]
    assert views.inspect(rec).network_settings.ports == {"53/udp": None, "80/tcp": None}
