"""Checking the specs clients send (ServiceSpec, NodeSpec, SwarmSpec) and reading what the
orchestrator acts on out of them: the mode, restart and update policies, placement, published
ports, swarmkit's defaults, the registry credentials kept with a service. The task template's
container side is taskspec.py's; reading the documents is specdoc.py's.

berth runs a subset of swarmkit's service spec. A field it does not act on is refused by name
(400), never stored and silently ignored: overlay networks and the ingress routing mesh are not
there (README: swarm mode).
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass

from berth_contracts.errors import InvalidParameter, NotImplementedByBerth
from berth_contracts.swarmnode import HostPort

from berth_orchestrator.records import Document
from berth_orchestrator.specdoc import (
    NODE_SCHEMA,
    SERVICE_SCHEMA,
    TEMPLATE_SCHEMA,
    container_of,
    go_names,
    integer,
    obj,
    refuse_unknown,
    template_of,
)
from berth_orchestrator.taskspec import (
    file_refs,
    generic_resources_of,
    health_of,
    host_config_of,
    mounts_of,
)
from berth_orchestrator.templating import check_template

SECOND_NS = 1_000_000_000
_NAME = re.compile(r"[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*")

_CONTAINER_FIELDS = {
    "Image", "Labels", "Command", "Args", "Hostname", "Env", "Dir", "User", "Init", "StopSignal",
    "StopGracePeriod", "TTY", "OpenStdin", "ReadOnly", "Isolation", "DNSConfig", "Mounts", "Healthcheck",
    "Groups", "Hosts", "Sysctls", "CapabilityAdd", "CapabilityDrop", "Ulimits", "OomScoreAdj", "Privileges",
    "Secrets", "Configs",
}  # fmt: skip
_TEMPLATE_FIELDS = {
    "ContainerSpec", "Resources", "RestartPolicy", "Placement", "ForceUpdate", "Runtime", "LogDriver",
}  # fmt: skip
_SERVICE_FIELDS = {"Name", "Labels", "TaskTemplate", "Mode", "UpdateConfig", "RollbackConfig", "EndpointSpec"}

@dataclass(frozen=True)
class Mode:
    global_mode: bool
    replicas: int  # a replicated job's TotalCompletions
    job: bool = False  # runs to completion (replicated-job, global-job)
    max_concurrent: int = 0  # a replicated job's tasks at once

    @property
    def name(self) -> str:
        return ("global" if self.global_mode else "replicated") + ("-job" if self.job else "")


def service_mode(spec: Document) -> Mode:
    mode = obj(spec, "Mode")
    if "GlobalJob" in mode:
        return Mode(global_mode=True, replicas=0, job=True)
    if "ReplicatedJob" in mode:
        # The API's defaults: one at a time, as many completions as run at once.
        job = obj(mode, "ReplicatedJob")
        concurrent = integer(job, "MaxConcurrent", 1)
        total = integer(job, "TotalCompletions", concurrent)
        if concurrent < 0 or total < 0:
            raise InvalidParameter("MaxConcurrent and TotalCompletions must be non-negative integers")
        return Mode(global_mode=False, replicas=total, job=True, max_concurrent=concurrent)
    if "Global" in mode:
        return Mode(global_mode=True, replicas=0)
    replicas = integer(obj(mode, "Replicated"), "Replicas", 1)
    if replicas < 0:
        raise InvalidParameter("Replicas must be a non-negative integer")
    return Mode(global_mode=False, replicas=replicas)


@dataclass(frozen=True)
class RestartPolicy:
    condition: str  # any, on-failure, none
    delay_ns: int
    max_attempts: int  # 0: no limit
    window_ns: int  # 0: attempts counted over the task's whole life


def restart_policy(template: Document) -> RestartPolicy:
    policy = obj(template, "RestartPolicy")
    condition = policy.get("Condition") or "any"
    if condition not in ("any", "on-failure", "none"):
        raise InvalidParameter(f"invalid RestartCondition: {condition!r}")
    delay = policy.get("Delay")
    return RestartPolicy(
        condition=str(condition),
        delay_ns=5 * SECOND_NS if delay is None else integer(policy, "Delay"),
        max_attempts=integer(policy, "MaxAttempts"),
        window_ns=integer(policy, "Window"),
    )


@dataclass(frozen=True)
class UpdatePolicy:
    parallelism: int  # 0: all at once
    delay_ns: int
    failure_action: str  # pause, continue, rollback
    order: str  # stop-first, start-first
    monitor_ns: int


def update_policy(spec: Document, key: str = "UpdateConfig") -> UpdatePolicy:
    cfg = obj(spec, key)
    order = cfg.get("Order") or "stop-first"
    action = cfg.get("FailureAction") or "pause"
    if order not in ("stop-first", "start-first"):
        raise InvalidParameter(f"invalid UpdateConfig.Order: {order!r}")
    if action not in ("pause", "continue", "rollback"):
        raise InvalidParameter(f"invalid UpdateConfig.FailureAction: {action!r}")
    return UpdatePolicy(
        parallelism=integer(cfg, "Parallelism", 1),
        delay_ns=integer(cfg, "Delay"),
        failure_action=str(action),
        order=str(order),
        monitor_ns=integer(cfg, "Monitor", 5 * SECOND_NS) or 5 * SECOND_NS,
    )


@dataclass(frozen=True)
class Constraint:
    key: str
    equal: bool
    value: str


def constraints(template: Document) -> list[Constraint]:
    placement = obj(template, "Placement")
    refuse_unknown(placement, {"Constraints", "Platforms", "MaxReplicas", "Preferences"}, "Placement")
    out = []
    for raw in placement.get("Constraints") or []:
        text = str(raw)
        op = "==" if "==" in text else "!=" if "!=" in text else ""
        if not op:
            raise InvalidParameter(f"invalid constraint {text!r}: expected key==value or key!=value")
        key, _, value = (part.strip() for part in text.partition(op))
        equal = op == "=="
        known = key in ("node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch")
        if not (known or key.startswith(("node.labels.", "engine.labels."))):
            raise InvalidParameter(f"constraint expected one operator from ==, !=: unknown key {key!r}")
        out.append(Constraint(key, equal, value))
    return out


def max_replicas(template: Document) -> int:
    """Placement.MaxReplicas: at most this many of the service's tasks on one node (0: no limit)."""
    value = integer(obj(template, "Placement"), "MaxReplicas")
    if value < 0:
        raise InvalidParameter("MaxReplicas must be a non-negative integer")
    return value


def spread_over(template: Document) -> list[str]:
    """Placement.Preferences: the labels whose values the tasks spread evenly over, outermost
    first (swarmkit's spread preference: node.labels.* or engine.labels.*; a node without the
    label, or any node for another descriptor, is one more value)."""
    out = []
    for pref in obj(template, "Placement").get("Preferences") or []:
        spread = obj(pref, "Spread") if isinstance(pref, dict) else {}
        descriptor = str(spread.get("SpreadDescriptor") or "")
        if not isinstance(pref, dict) or set(pref) != {"Spread"} or not descriptor:
            raise InvalidParameter("invalid placement preference: berth's swarm mode knows only spread=LABEL")
        out.append(descriptor)
    return out


def check_service_spec(spec: Document) -> Document:
    """The spec as stored (the client's, keys in Docker's spelling), or InvalidParameter."""
    if not isinstance(spec, dict):
        raise InvalidParameter("invalid service spec")
    spec = go_names(spec, SERVICE_SCHEMA)
    name = spec.get("Name") or ""
    if not isinstance(name, str):
        raise InvalidParameter("Name must be a string")
    if name and not _valid_name(name):
        raise InvalidParameter(f"name must be valid as a DNS name component: {name!r}")
    refuse_unknown(spec, _SERVICE_FIELDS, "ServiceSpec")
    template = obj(spec, "TaskTemplate")
    refuse_unknown(template, _TEMPLATE_FIELDS, "TaskTemplate")
    runtime = template.get("Runtime") or "container"
    if runtime != "container":
        raise InvalidParameter(f"runtime {runtime!r} is not supported by berth's swarm mode")
    container = obj(template, "ContainerSpec")
    refuse_unknown(container, _CONTAINER_FIELDS, "ContainerSpec")
    if not container.get("Image"):
        raise InvalidParameter("ContainerSpec: image reference must be provided")
    dns = obj(container, "DNSConfig")
    refuse_unknown(dns, {"Nameservers", "Search", "Options"}, "ContainerSpec.DNSConfig")
    log_driver = obj(template, "LogDriver")
    refuse_unknown(log_driver, {"Name", "Options"}, "TaskTemplate.LogDriver")
    template.setdefault("ForceUpdate", 0)  # swarmkit always shows it
    mounts_of(template)
    health_of(template)
    host_config_of(template)
    file_refs(template)
    check_template(template)
    endpoint = obj(spec, "EndpointSpec")
    host_ports(spec)
    if (endpoint.get("Mode") or "vip") not in ("vip", "dnsrr"):
        raise InvalidParameter(f"invalid endpoint mode {endpoint.get('Mode')!r}")
    resources = obj(template, "Resources")
    refuse_unknown(resources, {"Limits", "Reservations"}, "Resources")
    refuse_unknown(obj(resources, "Limits"), {"NanoCPUs", "MemoryBytes"}, "Resources.Limits")
    refuse_unknown(obj(resources, "Reservations"), {"NanoCPUs", "MemoryBytes", "GenericResources"}, "Resources.Reservations")
    generic_resources_of(template)  # its shape (a named unit is stored, as dockerd does)
    mode = service_mode(spec)
    if mode.job:
        if not mode.global_mode:  # swarmkit stores the defaults
            spec["Mode"] = {"ReplicatedJob": {"MaxConcurrent": mode.max_concurrent, "TotalCompletions": mode.replicas}}
        if obj(spec, "UpdateConfig") or obj(spec, "RollbackConfig"):
            raise InvalidParameter("update and rollback configuration is not supported for jobs")
    elif not mode.global_mode:  # swarmkit stores the default: one replica
        spec["Mode"] = {"Replicated": {"Replicas": mode.replicas}}
    restart_policy(template)
    update_policy(spec)
    update_policy(spec, "RollbackConfig")
    constraints(template)
    max_replicas(template)
    spread_over(template)
    return spec


def _valid_name(name: str) -> bool:
    # swarmkit: at most 63 characters, letters and digits, '-' or '_' only between them
    return len(name) <= 63 and _NAME.fullmatch(name) is not None


def host_ports(spec: Document) -> list[HostPort]:
    """EndpointSpec.Ports: host mode only (the ingress routing mesh is not there yet)."""
    out = []
    for port in obj(spec, "EndpointSpec").get("Ports") or []:
        if not isinstance(port, dict):
            raise InvalidParameter("invalid EndpointSpec.Ports")
        mode = port.get("PublishMode") or "ingress"
        if mode != "host":
            raise InvalidParameter(
                "published ports in ingress mode (the routing mesh) are not supported by berth's "
                "swarm mode yet: publish with mode=host"
            )
        protocol = port.get("Protocol") or "tcp"
        target, published = integer(port, "TargetPort"), integer(port, "PublishedPort")
        if protocol not in ("tcp", "udp", "sctp"):
            raise InvalidParameter(f"invalid protocol {protocol!r}")
        if not 0 < target < 65536 or not 0 <= published < 65536:
            raise InvalidParameter(f"invalid port {target}:{published}")
        out.append(HostPort(target=target, published=published, protocol=protocol))  # type: ignore[arg-type]
    return out


MIN_CERT_EXPIRY_NS = 3600 * 10**9  # swarmkit's ca.MinNodeCertExpiration


def check_swarm_features(spec: Document, current: Document | None) -> None:
    """What a SwarmSpec may ask that berth does not do, refused rather than stored and ignored:
    a new or external root CA (`docker swarm ca --rotate`, `--external-ca`: berth's CA is the
    one made at init, see swarmca); and a certificate expiry under swarmkit's minimum."""
    ca = obj(spec, "CAConfig")
    expiry = ca.get("NodeCertExpiry")
    if isinstance(expiry, int) and 0 < expiry < MIN_CERT_EXPIRY_NS:
        raise InvalidParameter("rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s")
    # At init (no current spec) the CA is new anyway: ForceRotate is only recorded, as swarmkit does.
    rotate = current is not None and int(ca.get("ForceRotate") or 0) > int(obj(current, "CAConfig").get("ForceRotate") or 0)
    if rotate or ca.get("ExternalCAs") or ca.get("SigningCACert") or ca.get("SigningCAKey"):
        raise NotImplementedByBerth(
            "berth does not rotate the swarm's root CA or use an external or given CA: the swarm keeps "
            "the CA made at init"
        )


def same_template(a: Document, b: Document) -> bool:
    """Whether a service's tasks need replacing (a spec stored by an older berth may lack
    ForceUpdate or spell Healthcheck "HealthCheck": the same template)."""

    def settled(template: Document) -> Document:
        out = go_names(template, TEMPLATE_SCHEMA)
        return {**out, "ForceUpdate": out.get("ForceUpdate") or 0}

    return settled(a) == settled(b)


def address_pools(pools: list[str], subnet_size: int, data_path_port: int) -> tuple[list[str], int, int]:
    """`swarm init`'s overlay settings, checked in moby's words, with swarmkit's defaults."""
    for pool in pools:
        try:
            ipaddress.ip_network(pool)
        except ValueError as exc:
            raise InvalidParameter(f"invalid base pool {pool!r}: {exc}") from None
    if not 0 <= subnet_size <= 32:
        raise InvalidParameter(f"subnet size is out of range: {subnet_size}")
    if data_path_port and not 1024 <= data_path_port <= 49151:
        raise InvalidParameter(f"Datapath port number is not in valid range (1024-49151) : {data_path_port}")
    return pools or ["10.0.0.0/8"], subnet_size or 24, data_path_port or 4789


_UPDATE_DEFAULTS: Document = {
    "Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * SECOND_NS, "MaxFailureRatio": 0, "Order": "stop-first",
}  # fmt: skip
# swarmkit's api/defaults.Service, as `docker service inspect` shows it with insertDefaults.
SERVICE_DEFAULTS: Document = {
    "TaskTemplate": {
        "ContainerSpec": {"StopGracePeriod": 10 * SECOND_NS, "DNSConfig": {}},
        "Resources": {"Limits": {}, "Reservations": {}},
        "RestartPolicy": {"Condition": "any", "Delay": 5 * SECOND_NS, "MaxAttempts": 0},
        "Placement": {},
        "ForceUpdate": 0,
    },
    "UpdateConfig": _UPDATE_DEFAULTS,
    "RollbackConfig": _UPDATE_DEFAULTS,
    "EndpointSpec": {"Mode": "vip"},
}


def with_defaults(spec: Document, defaults: Document = SERVICE_DEFAULTS) -> Document:
    """The spec with swarmkit's defaults where it has nothing (as its InterpolateService: an
    update or rollback config given is kept whole)."""
    out = dict(spec)
    for key, value in defaults.items():
        if key not in out or out[key] is None:
            out[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(out[key], dict) and key not in ("UpdateConfig", "RollbackConfig"):
            out[key] = with_defaults(out[key], value)
    return out


# `--with-registry-auth`: the client's credentials, where swarmkit keeps them (ContainerSpec's
# PullOptions, which the Engine API never shows). Part of the task template, so a service
# updated with other credentials rolls its tasks, as with swarmkit, and a rollback takes the
# previous spec's back.
_PULL_OPTIONS = "PullOptions"


def registry_auth_of(template: Document) -> str:
    return str((container_of(template).get(_PULL_OPTIONS) or {}).get("RegistryAuth") or "")


def with_registry_auth(spec: Document, auth: str) -> Document:
    """The spec with these credentials (none: without any)."""
    out = dict(spec)
    template = dict(template_of(out))
    container = {k: v for k, v in container_of(template).items() if k != _PULL_OPTIONS}
    if auth:
        container[_PULL_OPTIONS] = {"RegistryAuth": auth}
    template["ContainerSpec"] = container
    out["TaskTemplate"] = template
    return out


def public_template(template: Document) -> Document:
    """A task template as the Engine API shows it: without the credentials."""
    if _PULL_OPTIONS not in container_of(template):
        return template
    return {**template, "ContainerSpec": {k: v for k, v in container_of(template).items() if k != _PULL_OPTIONS}}


def public_spec(spec: Document) -> Document:
    if _PULL_OPTIONS not in container_of(template_of(spec)):
        return spec
    return {**spec, "TaskTemplate": public_template(template_of(spec))}


def check_node_spec(spec: Document) -> Document:
    if not isinstance(spec, dict):
        raise InvalidParameter("invalid node spec")
    spec = go_names(spec, NODE_SCHEMA)
    refuse_unknown(spec, {"Name", "Labels", "Role", "Availability"}, "NodeSpec")
    if spec.get("Role") not in (None, "", "manager", "worker"):
        raise InvalidParameter(f"invalid role {spec.get('Role')!r}")
    if spec.get("Availability") not in (None, "", "active", "pause", "drain"):
        raise InvalidParameter(f"invalid availability {spec.get('Availability')!r}")
    return spec

