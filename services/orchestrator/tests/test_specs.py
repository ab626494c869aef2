"""Service and node specs: Go's case-insensitive field names, and refusals by name."""

from __future__ import annotations

import base64

import pytest
from berth_contracts.errors import InvalidParameter, NotImplementedByBerth
from berth_orchestrator import specdoc, specs, taskspec


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
    template = specdoc.template_of(spec)
    assert specdoc.container_of(template) == {"Image": "busybox", "Env": ["A=1"]}
    assert template["Placement"]["Platforms"] == [{"Architecture": "amd64", "OS": "linux"}]
    both = specdoc.go_names({"Mode": {"global": {}, "Global": {}}}, specdoc.SERVICE_SCHEMA)
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
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b", "Secrets": [{"SecretName": "s"}]}}}, "malformed secret reference"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b", "Configs": [
            {"ConfigID": "1", "ConfigName": "a", "File": {"Name": "/x"}},
            {"ConfigID": "2", "ConfigName": "b", "File": {"Name": "x"}}]}}}, "'a' and 'b' have a conflicting target: '/x'"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b", "Secrets": [
            {"SecretID": "1", "SecretName": "a", "File": {"Name": "x", "UID": "root"}}]}}}, "a number is needed"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b", "Privileges": {"CredentialSpec": {"File": "f"}}}}},
         "CredentialSpec"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b", "Privileges": {"Seccomp": {"Mode": "custom", "Profile": "{"}}}}},
         "Seccomp.Profile"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b"}, "Resources": {"Reservations": {"GenericResources": [{}]}}}},
         "invalid generic resource"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b"}, "Resources": {"Reservations": {"GenericResources": [
            {"DiscreteResourceSpec": {"Kind": "gpu", "Value": "x"}}]}}}}, "invalid generic resource"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b"}, "Placement": {"MaxReplicas": -1}}}, "MaxReplicas"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b"}, "Networks": [{"Target": "n"}]}}, "overlay networks"),
        ({"Mode": {"ReplicatedJob": {}}, "UpdateConfig": {"Parallelism": 2}}, "not supported for jobs"),
        ({"Mode": {"ReplicatedJob": {"MaxConcurrent": -1}}}, "non-negative"),
        ({"TaskTemplate": {"ContainerSpec": {"Image": "b"}, "Placement": {"Preferences": [{"Spread": {}}]}}},
         "only spread=LABEL"),
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


def test_a_task_containers_host_config_is_moby_adapters() -> None:
    """As docker-py sends them (its own spellings); the node's engine checks the result as
    it checks `docker run`'s."""
    spec = specs.check_service_spec(_spec(TaskTemplate={
        "ContainerSpec": {
            "Image": "b", "CapabilityAdd": ["NET_ADMIN"], "CapabilityDrop": ["CHOWN"], "Groups": ["wheel"],
            "Hosts": ["127.0.0.1 foobar", "8.8.8.8 baz alias", "lonely"], "Sysctls": {"net.core.somaxconn": 1024},
            "DNSConfig": {"Nameservers": ["8.8.8.8"], "Search": ["example.org"], "Options": ["timeout:3"]},
            "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}], "OomScoreAdj": 5,
            "Privileges": {"SELinuxContext": {"Disable": True, "User": "u"}, "NoNewPrivileges": True,
                           "Seccomp": {"Mode": "custom", "Profile": base64.b64encode(b'{"x": 1}').decode()},
                           "AppArmor": {"Mode": "disabled"}},
            "healthcheck": {"Test": ["CMD", "true"]},
        },
        "LogDriver": {"Name": "none", "Options": {"a": "b"}},
    }))  # fmt: skip
    template = specdoc.template_of(spec)
    hc = taskspec.host_config_of(template)
    assert (hc.cap_add, hc.cap_drop, hc.group_add) == (["NET_ADMIN"], ["CHOWN"], ["wheel"])
    assert hc.extra_hosts == ["foobar:127.0.0.1", "baz:8.8.8.8"]
    assert hc.sysctls == {"net.core.somaxconn": "1024"}
    assert (hc.dns, hc.dns_search, hc.dns_options) == (["8.8.8.8"], ["example.org"], ["timeout:3"])
    assert [(u.name, u.soft, u.hard) for u in hc.ulimits or []] == [("nofile", 100, 200)] and hc.oom_score_adj == 5
    assert hc.security_opt == [
        "label=disable", "label=user:u", 'seccomp={"x": 1}', "apparmor=unconfined", "no-new-privileges=true",
    ]
    assert (hc.log_config.type, hc.log_config.config) == ("none", {"a": "b"})
    # Docker's spelling (moby's Healthcheck), and ForceUpdate always there, as swarmkit shows them.
    assert "Healthcheck" in specdoc.container_of(template) and template["ForceUpdate"] == 0
    assert taskspec.health_of(template) is not None
    empty = taskspec.host_config_of(specdoc.template_of(specs.check_service_spec(_spec())))
    assert empty.cap_add is None and empty.security_opt is None and empty.log_config.type == ""


def test_an_older_stored_template_is_the_same_template() -> None:
    older = {"ContainerSpec": {"Image": "b", "HealthCheck": {"Test": ["NONE"]}}}
    newer = {"ContainerSpec": {"Image": "b", "Healthcheck": {"Test": ["NONE"]}}, "ForceUpdate": 0}
    assert specs.same_template(older, newer)
    assert not specs.same_template(newer, {**newer, "ForceUpdate": 1})  # `service update --force`


def test_a_swarm_spec_takes_swarmkits_defaults_where_the_client_sends_zeros() -> None:
    from berth_orchestrator.views import swarm_spec

    spec = swarm_spec({"Name": "default", "Raft": {"ElectionTick": 0, "HeartbeatTick": 0, "SnapshotInterval": 0},
                       "Orchestration": {"TaskHistoryRetentionLimit": 2}, "Labels": {"a": "b"}})  # fmt: skip
    assert spec["Raft"]["ElectionTick"] == 10 and spec["Raft"]["SnapshotInterval"] == 10000
    assert spec["Orchestration"] == {"TaskHistoryRetentionLimit": 2} and spec["Labels"] == {"a": "b"}
    assert spec["Dispatcher"]["HeartbeatPeriod"] == 5_000_000_000


def test_what_berths_ca_does_not_do_is_refused() -> None:
    specs.check_swarm_features({"EncryptionConfig": {"AutoLockManagers": True}, "CAConfig": {"ForceRotate": 2}},
                               {"CAConfig": {"ForceRotate": 2}})  # fmt: skip
    refused = (
        ({"CAConfig": {"ForceRotate": 1}}, {"CAConfig": {}}),  # docker swarm ca --rotate
        ({"CAConfig": {"ExternalCAs": [{"Protocol": "cfssl", "URL": "https://ca"}]}}, None),
        ({"CAConfig": {"SigningCACert": "PEM"}}, None),
    )
    for spec, current in refused:
        with pytest.raises(NotImplementedByBerth):
            specs.check_swarm_features(spec, current)
    specs.check_swarm_features({"CAConfig": {"ForceRotate": 6}}, None)  # at init: a new CA anyway
    # `--cert-expiry`: at least swarmkit's hour, in its words.
    specs.check_swarm_features({"CAConfig": {"NodeCertExpiry": 3600 * 10**9}}, None)
    with pytest.raises(InvalidParameter, match=r"minimum certificate expiry time is: 1h0m0s"):
        specs.check_swarm_features({"CAConfig": {"NodeCertExpiry": 1800 * 10**9}}, None)


def test_registry_credentials_live_in_the_template_and_are_never_shown() -> None:
    spec = specs.with_registry_auth(specs.check_service_spec(_spec()), "secret-auth")
    template = specdoc.template_of(spec)
    assert specs.registry_auth_of(template) == "secret-auth"
    assert "secret-auth" not in repr(specs.public_spec(spec)) and "secret-auth" not in repr(specs.public_template(template))
    assert specs.public_spec(spec)["TaskTemplate"]["ContainerSpec"]["Image"] == "busybox"
    assert specs.registry_auth_of(specdoc.template_of(specs.with_registry_auth(spec, ""))) == ""
    plain = specs.check_service_spec(_spec())
    assert specs.public_spec(plain) is plain  # nothing to hide: not copied


def test_insert_defaults_fills_what_the_spec_leaves_out_as_swarmkit() -> None:
    spec = specs.check_service_spec(_spec(UpdateConfig={"Parallelism": 0}, TaskTemplate={
        "ContainerSpec": {"Image": "b"}, "RestartPolicy": {"Condition": "none"}}))  # fmt: skip
    full = specs.with_defaults(spec)
    assert full["RollbackConfig"] == {**specs.SERVICE_DEFAULTS["RollbackConfig"]}
    assert full["UpdateConfig"] == {"Parallelism": 0}  # given: kept whole
    template = full["TaskTemplate"]
    assert template["RestartPolicy"] == {"Condition": "none", "Delay": 5 * specs.SECOND_NS, "MaxAttempts": 0}
    assert template["ContainerSpec"] == {"Image": "b", "StopGracePeriod": 10 * specs.SECOND_NS, "DNSConfig": {}}
    assert "RollbackConfig" not in spec and "StopGracePeriod" not in spec["TaskTemplate"]["ContainerSpec"]


def test_swarm_inits_overlay_settings_are_checked_in_mobys_words() -> None:
    assert specs.address_pools([], 0, 0) == (["10.0.0.0/8"], 24, 4789)
    assert specs.address_pools(["2.0.0.0/16"], 26, 4242) == (["2.0.0.0/16"], 26, 4242)
    with pytest.raises(InvalidParameter, match="invalid base pool 'x'"):
        specs.address_pools(["x"], 0, 0)
    with pytest.raises(InvalidParameter, match="subnet size is out of range: 33"):
        specs.address_pools([], 33, 0)
    with pytest.raises(InvalidParameter, match=r"not in valid range \(1024-49151\) : 80"):
        specs.address_pools([], 0, 80)


def test_a_replicated_jobs_defaults_are_the_apis() -> None:
    spec = specs.check_service_spec(_spec(Mode={"ReplicatedJob": {}}))
    assert spec["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    spec = specs.check_service_spec(_spec(Mode={"replicatedJob": {"MaxConcurrent": 3}}))
    assert spec["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 3, "TotalCompletions": 3}}
    assert specs.service_mode(spec).name == "replicated-job"
    assert specs.service_mode(specs.check_service_spec(_spec(Mode={"GlobalJob": {}}))).name == "global-job"
