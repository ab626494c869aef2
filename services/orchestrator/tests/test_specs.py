"""Service and node specs: Go's case-insensitive field names, and refusals by name."""

from __future__ import annotations

import pytest
from berth_contracts.errors import InvalidParameter, NotImplementedByBerth
from berth_orchestrator import specs


def _spec(**extra: object) -> dict[str, object]:
    return {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}, **extra}


def test_field_names_match_as_gos_do_and_labels_keep_theirs() -> None:
    """docker-py's ServiceMode sends {"replicated": {"Replicas": N}}; dockerd reads it."""
    spec = specs.check_service_spec({
        "name": "web",
        "labels": {"lower.Case": "x"},
        "taskTemplate": {"containerSpec": {"image": "busybox", "env": ["A=1"]},
                         "placement": {"platforms": [{"architecture": "amd64", "os": "linux"}]}},
        "mode": {"replicated": {"replicas": 3}},
    })  # fmt: skip
    assert spec["Name"] == "web" and spec["Labels"] == {"lower.Case": "x"}
    assert specs.service_mode(spec) == specs.Mode(global_mode=False, replicas=3)
    template = specs.template_of(spec)
    assert specs.container_of(template) == {"Image": "busybox", "Env": ["A=1"]}
    assert template["Placement"]["Platforms"] == [{"Architecture": "amd64", "OS": "linux"}]
    both = specs.go_names({"Mode": {"global": {}, "Global": {}}}, specs.SERVICE_SCHEMA)
    assert both == {"Mode": {"Global": {}}}
    assert specs.check_node_spec({"availability": "drain"}) == {"Availability": "drain"}


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}}, "ingress mode"),
        ({"EndpointSpec": {"Ports": [{"TargetPort": 0, "PublishMode": "host"}]}}, "invalid port"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b", "Mounts": [{"Type": "npipe", "Target": "/t"}]}}},
         "mounts bind, volume and tmpfs"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b", "Mounts": [{"Type": "bind"}]}}}, "Target must not be empty"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b", "Sysctls": {"a": "1"}}}}, "ContainerSpec.Sysctls"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b"}, "Networks": [{"Target": "n"}]}}, "overlay networks"),
        ({"Mode": {"ReplicatedJob": {}}}, "jobs"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b"}, "Placement": {"Preferences": [{"Spread": {}}]}}},
         "Placement.Preferences"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b"}, "Placement": {"Constraints": ["node.x==1"]}}},
         "unknown key 'node.x'"),
        ({"TaskTemplate": {"ContainerSpec": {}}}, "image reference must be provided"),
        ({"Name": "-bad"}, "valid as a DNS name component"),
    ],
)
def test_what_berth_does_not_act_on_is_refused_by_name(extra: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidParameter, match=words):
        specs.check_service_spec(_spec(**extra))


def test_empty_values_of_unsupported_fields_pass() -> None:
    """The CLI sends empty objects and defaults for what the user did not set."""
    specs.check_service_spec(_spec(TaskTemplate={
        "ContainerSpec": {"Image": "b", "Mounts": [], "DNSConfig": {}, "Isolation": "default", "Init": False},
        "Networks": None, "Resources": {"Limits": {}, "Reservations": {}}, "Placement": {}, "ForceUpdate": 0,
    }))  # fmt: skip


def test_a_swarm_spec_takes_swarmkits_defaults_where_the_client_sends_zeros() -> None:
    from berth_orchestrator.views import swarm_spec

    spec = swarm_spec({"Name": "default", "Raft": {"ElectionTick": 0, "HeartbeatTick": 0, "SnapshotInterval": 0},
                       "Orchestration": {"TaskHistoryRetentionLimit": 2}, "Labels": {"a": "b"}})  # fmt: skip
    assert spec["Raft"]["ElectionTick"] == 10 and spec["Raft"]["SnapshotInterval"] == 10000
    assert spec["Orchestration"] == {"TaskHistoryRetentionLimit": 2} and spec["Labels"] == {"a": "b"}
    assert spec["Dispatcher"]["HeartbeatPeriod"] == 5_000_000_000


def test_what_berths_ca_and_store_do_not_do_is_refused() -> None:
    specs.check_swarm_features({"EncryptionConfig": {"AutoLockManagers": False}, "CAConfig": {"ForceRotate": 2}},
                               {"CAConfig": {"ForceRotate": 2}})  # fmt: skip
    refused = (
        ({"EncryptionConfig": {"AutoLockManagers": True}}, None),
        ({"CAConfig": {"ForceRotate": 1}}, {"CAConfig": {}}),  # docker swarm ca --rotate
        ({"CAConfig": {"ExternalCAs": [{"Protocol": "cfssl", "URL": "https://ca"}]}}, None),
        ({"CAConfig": {"SigningCACert": "PEM"}}, None),
    )
    for spec, current in refused:
        with pytest.raises(NotImplementedByBerth):
            specs.check_swarm_features(spec, current)
    # `--cert-expiry`: at least swarmkit's hour, in its words.
    specs.check_swarm_features({"CAConfig": {"NodeCertExpiry": 3600 * 10**9}}, None)
    with pytest.raises(InvalidParameter, match=r"minimum certificate expiry time is: 1h0m0s"):
        specs.check_swarm_features({"CAConfig": {"NodeCertExpiry": 1800 * 10**9}}, None)


def test_registry_credentials_live_in_the_template_and_are_never_shown() -> None:
    spec = specs.with_registry_auth(specs.check_service_spec(_spec()), "secret-auth")
    template = specs.template_of(spec)
    assert specs.registry_auth_of(template) == "secret-auth"
    assert "secret-auth" not in repr(specs.public_spec(spec)) and "secret-auth" not in repr(specs.public_template(template))
    assert specs.public_spec(spec)["TaskTemplate"]["ContainerSpec"]["Image"] == "busybox"
    assert specs.registry_auth_of(specs.template_of(specs.with_registry_auth(spec, ""))) == ""
    plain = specs.check_service_spec(_spec())
    assert specs.public_spec(plain) is plain  # nothing to hide: not copied
