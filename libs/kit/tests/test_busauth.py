"""The permission table and what is generated from it: credential files, the server config."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from berth_contracts import subjects
from berth_contracts.buspermissions import (
    API_GATEWAY,
    BUILDER,
    ENGINE,
    LIFECYCLE,
    ORCHESTRATOR,
    PERMISSIONS,
    REGISTRY_PROXY,
    RUNTIME_AGENT,
    STATUS,
)
from berth_kit.busauth import (
    SERVER_CONFIG,
    CredentialsError,
    creds_path,
    read_credentials,
    render_server_config,
    write_bus_dir,
)

SERVICES = (API_GATEWAY, ENGINE, LIFECYCLE, RUNTIME_AGENT, REGISTRY_PROXY, BUILDER, ORCHESTRATOR)


def publishers(subject: str) -> set[str]:
    return {who for who, p in PERMISSIONS.items() if subject in p.publish}


def test_every_service_and_the_status_prober_has_an_identity() -> None:
    assert set(PERMISSIONS) == {*SERVICES, STATUS}


def test_only_the_engine_commands_the_agent_and_lifecycle() -> None:
    assert publishers(subjects.agent_rpc("*")) == {ENGINE}
    assert publishers(subjects.lifecycle_rpc("*")) == {ENGINE}


def test_the_gateway_publishes_engine_builder_and_orchestrator_requests_stdin_and_credit_only() -> None:
    assert PERMISSIONS[API_GATEWAY].publish == (
        subjects.ENGINE_RPC,
        subjects.BUILDER_RPC,
        subjects.ORCHESTRATOR_RPC,
        subjects.stdio_in("*"),
        subjects.stdio_ack("*"),
        subjects.health(API_GATEWAY),
        # Answers to the requests it serves: the agent's and the orchestrator's (a service's
        # log) log checkpoints, health pings.
        f"{subjects.inbox_prefix(RUNTIME_AGENT)}.>",
        f"{subjects.inbox_prefix(ORCHESTRATOR)}.>",
        f"{subjects.inbox_prefix(API_GATEWAY)}.>",
        f"{subjects.inbox_prefix(STATUS)}.>",
    )
    assert publishers(subjects.ENGINE_RPC) == {API_GATEWAY, BUILDER, ORCHESTRATOR}  # ORCHESTRATOR: task logs
    assert publishers(subjects.BUILDER_RPC) == {API_GATEWAY}
    assert publishers(subjects.ORCHESTRATOR_RPC) == {API_GATEWAY, ENGINE}  # the API; heartbeats
    assert publishers(subjects.stdio_in("*")) == {API_GATEWAY}
    assert publishers(subjects.stdio_ack("*")) == {API_GATEWAY}


def test_the_agent_publishes_its_events_output_and_log_streams_only() -> None:
    assert set(PERMISSIONS[RUNTIME_AGENT].publish) == {
        subjects.task_events("*"),
        subjects.stdio_out("*"),
        f"{subjects.inbox_prefix(API_GATEWAY)}.>",  # a container's log
        f"{subjects.inbox_prefix(ORCHESTRATOR)}.>",  # a service task's log
        subjects.health(RUNTIME_AGENT),
        f"{subjects.inbox_prefix(ENGINE)}.>",  # answers (also across a config reload)
        f"{subjects.inbox_prefix(RUNTIME_AGENT)}.>",
        f"{subjects.inbox_prefix(STATUS)}.>",
    }
    assert publishers(subjects.task_events("*")) == {RUNTIME_AGENT}
    assert publishers(subjects.stdio_out("*")) == {RUNTIME_AGENT}


def test_only_the_orchestrator_reaches_jetstream_and_the_swarm_bucket() -> None:
    """The bucket holds the join tokens: nobody else may use JetStream's API or its subjects."""
    for who, perms in PERMISSIONS.items():
        js = [s for s in (*perms.publish, *perms.subscribe) if s.startswith(("$JS", "$KV"))]
        assert js == ([] if who != ORCHESTRATOR else ["$JS.API.>", f"$KV.{subjects.SWARM_BUCKET}.>"]), who
    assert publishers(subjects.SWARM_CHANGED) == {ORCHESTRATOR}


def test_inboxes_are_private_and_nobody_reads_everything() -> None:
    for who, perms in PERMISSIONS.items():
        inboxes = [s for s in perms.subscribe if s.startswith(subjects.INBOX_PREFIX)]
        assert inboxes == [f"{subjects.inbox_prefix(who)}.>"], who
        assert all(not s.startswith((">", "berth.>", "*")) for s in (*perms.subscribe, *perms.publish))


def test_health_is_served_by_each_service_and_pinged_by_status() -> None:
    for who in SERVICES:
        assert subjects.health(who) in PERMISSIONS[who].subscribe
    assert PERMISSIONS[STATUS].publish == (subjects.health("*"),)
    assert not PERMISSIONS[STATUS].allow_responses


def test_bus_dir_files_are_private_and_credentials_are_kept(tmp_path: Path) -> None:
    bus = tmp_path / "bus"
    config = write_bus_dir(bus, ("port: 4222",))
    assert stat.S_IMODE(bus.stat().st_mode) == 0o700
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    first = {}
    for who in PERMISSIONS:
        path = creds_path(bus, who)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        first[who] = read_credentials(path)
        assert first[who].user == who and len(first[who].password) >= 40
    assert len({c.password for c in first.values()}) == len(first)
    # A restart keeps them (services that reconnect keep working); a broken file is replaced.
    creds_path(bus, ENGINE).write_text("garbage")
    write_bus_dir(bus)
    again = {who: read_credentials(creds_path(bus, who)) for who in PERMISSIONS}
    assert again[API_GATEWAY] == first[API_GATEWAY]
    assert again[ENGINE] != first[ENGINE]
    assert (bus / SERVER_CONFIG).read_text().count(again[ENGINE].password) == 1


def test_credentials_never_show_their_password(tmp_path: Path) -> None:
    write_bus_dir(tmp_path / "bus")
    creds = read_credentials(creds_path(tmp_path / "bus", ENGINE))
    assert creds.password not in repr(creds) and creds.password not in str(creds)


def test_a_file_that_is_not_credentials_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.creds"
    path.write_text(json.dumps({"user": "u"}))
    with pytest.raises(CredentialsError, match="not a berth NATS credentials file"):
        read_credentials(path)
    with pytest.raises(CredentialsError, match="cannot read"):
        read_credentials(tmp_path / "missing")


def test_server_config_has_every_identity_and_no_jetstream(tmp_path: Path) -> None:
    write_bus_dir(tmp_path / "bus")
    creds = {who: read_credentials(creds_path(tmp_path / "bus", who)) for who in PERMISSIONS}
    text = render_server_config(creds, ("port: 4222",))
    assert text.splitlines()[1] == "port: 4222"
    assert "jetstream" not in text and "no_auth_user" not in text
    for who in PERMISSIONS:
        assert f'{{user: "{who}", password: "{creds[who].password}"' in text
    # The registry-proxy sends nothing but its health answers.
    line = next(ln for ln in text.splitlines() if f'"{REGISTRY_PROXY}"' in ln)
    assert (
        'publish: {allow: ["berth.health.v1.berth-registry-proxy", "berth.inbox.v1.berth-registry-proxy.>", '
        '"berth.inbox.v1.berth-status.>"]}'
    ) in line


def inbox_writers(identity: str) -> set[str]:
    return publishers(f"{subjects.inbox_prefix(identity)}.>") - {identity}


def test_a_service_answers_into_the_inboxes_of_those_it_serves_only() -> None:
    # Besides allow_responses: a reload of nats-server's config (swarm mode) forgets those.
    assert inbox_writers(ENGINE) == {LIFECYCLE, RUNTIME_AGENT, ORCHESTRATOR}
    assert inbox_writers(API_GATEWAY) == {ENGINE, BUILDER, ORCHESTRATOR, RUNTIME_AGENT}  # + log streams
    assert inbox_writers(BUILDER) == {ENGINE}
    assert inbox_writers(RUNTIME_AGENT) == {API_GATEWAY, ORCHESTRATOR}  # log checkpoints' answers
    # A service task's log: the agent streams it to the orchestrator (the engine: an empty end).
    assert inbox_writers(ORCHESTRATOR) == {API_GATEWAY, ENGINE, RUNTIME_AGENT}
    assert inbox_writers(LIFECYCLE) == inbox_writers(REGISTRY_PROXY) == set()
    assert inbox_writers(STATUS) == set(SERVICES)
