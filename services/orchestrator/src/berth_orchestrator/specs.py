"""Checking the specs clients send (ServiceSpec, NodeSpec, SwarmSpec) and reading what the
orchestrator acts on out of them.

berth runs a subset of swarmkit's service spec. A field it does not act on is refused by name
(400), never stored and silently ignored: overlay networks, the ingress routing mesh, secrets,
configs and jobs are not there yet (README: swarm mode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
from berth_contracts.docker import HealthConfig
from berth_contracts.errors import InvalidParameter, NotImplementedByBerth
from berth_contracts.swarm import HostPort

from berth_orchestrator.records import Document

SECOND_NS = 1_000_000_000
_NAME = re.compile(r"[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*")

_CONTAINER_FIELDS = {
    "Image", "Labels", "Command", "Args", "Hostname", "Env", "Dir", "User", "Init", "StopSignal",
    "StopGracePeriod", "TTY", "OpenStdin", "ReadOnly", "Isolation", "DNSConfig", "Mounts", "HealthCheck",
}  # fmt: skip
_TEMPLATE_FIELDS = {
    "ContainerSpec", "Resources", "RestartPolicy", "Placement", "ForceUpdate", "Runtime",
}  # fmt: skip
_SERVICE_FIELDS = {"Name", "Labels", "TaskTemplate", "Mode", "UpdateConfig", "RollbackConfig", "EndpointSpec"}
_UNSUPPORTED_WORDS = {
    "Networks": "overlay networks (--network) are not supported by berth's swarm mode yet",
    "Secrets": "secrets are not supported by berth's swarm mode yet",
    "Configs": "configs are not supported by berth's swarm mode yet",
    "LogDriver": "log drivers in services are not supported by berth's swarm mode yet",
}


def _empty(value: Any) -> bool:
    return value in (None, "", 0, False, "default") or value == {} or value == []


def _refuse_unknown(doc: Document, allowed: set[str], where: str) -> None:
    for key, value in doc.items():
        if key in allowed or _empty(value):
            continue
        if key in _UNSUPPORTED_WORDS:
            raise InvalidParameter(_UNSUPPORTED_WORDS[key])
        raise InvalidParameter(f"{where}.{key} is not supported by berth's swarm mode yet")


def _dict(doc: Document, key: str) -> Document:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter(f"{key} must be an object")
    return value


def _int(doc: Document, key: str, default: int = 0) -> int:
    value = doc.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidParameter(f"{key} must be an integer")
    return value


@dataclass(frozen=True)
class Mode:
    global_mode: bool
    replicas: int


def service_mode(spec: Document) -> Mode:
    mode = _dict(spec, "Mode")
    if "ReplicatedJob" in mode or "GlobalJob" in mode:
        raise InvalidParameter("jobs (--mode replicated-job|global-job) are not supported by berth's swarm mode yet")
    if "Global" in mode:
        return Mode(global_mode=True, replicas=0)
    replicas = _int(_dict(mode, "Replicated"), "Replicas", 1)
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
    policy = _dict(template, "RestartPolicy")
    condition = policy.get("Condition") or "any"
    if condition not in ("any", "on-failure", "none"):
        raise InvalidParameter(f"invalid RestartCondition: {condition!r}")
    delay = policy.get("Delay")
    return RestartPolicy(
        condition=str(condition),
        delay_ns=5 * SECOND_NS if delay is None else _int(policy, "Delay"),
        max_attempts=_int(policy, "MaxAttempts"),
        window_ns=_int(policy, "Window"),
    )


@dataclass(frozen=True)
class UpdatePolicy:
    parallelism: int  # 0: all at once
    delay_ns: int
    failure_action: str  # pause, continue, rollback
    order: str  # stop-first, start-first
    monitor_ns: int


def update_policy(spec: Document, key: str = "UpdateConfig") -> UpdatePolicy:
    cfg = _dict(spec, key)
    order = cfg.get("Order") or "stop-first"
    action = cfg.get("FailureAction") or "pause"
    if order not in ("stop-first", "start-first"):
        raise InvalidParameter(f"invalid UpdateConfig.Order: {order!r}")
    if action not in ("pause", "continue", "rollback"):
        raise InvalidParameter(f"invalid UpdateConfig.FailureAction: {action!r}")
    return UpdatePolicy(
        parallelism=_int(cfg, "Parallelism", 1),
        delay_ns=_int(cfg, "Delay"),
        failure_action=str(action),
        order=str(order),
        monitor_ns=_int(cfg, "Monitor", 5 * SECOND_NS) or 5 * SECOND_NS,
    )


@dataclass(frozen=True)
class Constraint:
    key: str
    equal: bool
    value: str


def constraints(template: Document) -> list[Constraint]:
    placement = _dict(template, "Placement")
    _refuse_unknown(placement, {"Constraints", "Platforms"}, "Placement")
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
    _refuse_unknown(spec, _SERVICE_FIELDS, "ServiceSpec")
    template = _dict(spec, "TaskTemplate")
    _refuse_unknown(template, _TEMPLATE_FIELDS, "TaskTemplate")
    runtime = template.get("Runtime") or "container"
    if runtime != "container":
        raise InvalidParameter(f"runtime {runtime!r} is not supported by berth's swarm mode")
    container = _dict(template, "ContainerSpec")
    _refuse_unknown(container, _CONTAINER_FIELDS, "ContainerSpec")
    if not container.get("Image"):
        raise InvalidParameter("ContainerSpec: image reference must be provided")
    dns = _dict(container, "DNSConfig")
    _refuse_unknown(dns, set(), "ContainerSpec.DNSConfig")
    mounts_of(template)
    health_of(template)
    endpoint = _dict(spec, "EndpointSpec")
    host_ports(spec)
    if (endpoint.get("Mode") or "vip") not in ("vip", "dnsrr"):
        raise InvalidParameter(f"invalid endpoint mode {endpoint.get('Mode')!r}")
    resources = _dict(template, "Resources")
    _refuse_unknown(resources, {"Limits", "Reservations"}, "Resources")
    _refuse_unknown(_dict(resources, "Limits"), {"NanoCPUs", "MemoryBytes"}, "Resources.Limits")
    _refuse_unknown(_dict(resources, "Reservations"), {"NanoCPUs", "MemoryBytes"}, "Resources.Reservations")
    mode = service_mode(spec)
    if not mode.global_mode:  # swarmkit stores the default: one replica
        spec["Mode"] = {"Replicated": {"Replicas": mode.replicas}}
    restart_policy(template)
    update_policy(spec)
    update_policy(spec, "RollbackConfig")
    constraints(template)
    return spec


def _valid_name(name: str) -> bool:
    # swarmkit: at most 63 characters, letters and digits, '-' or '_' only between them
    return len(name) <= 63 and _NAME.fullmatch(name) is not None


def host_ports(spec: Document) -> list[HostPort]:
    """EndpointSpec.Ports: host mode only (the ingress routing mesh is not there yet)."""
    out = []
    for port in _dict(spec, "EndpointSpec").get("Ports") or []:
        if not isinstance(port, dict):
            raise InvalidParameter("invalid EndpointSpec.Ports")
        mode = port.get("PublishMode") or "ingress"
        if mode != "host":
            raise InvalidParameter(
                "published ports in ingress mode (the routing mesh) are not supported by berth's "
                "swarm mode yet: publish with mode=host"
            )
        protocol = port.get("Protocol") or "tcp"
        target, published = _int(port, "TargetPort"), _int(port, "PublishedPort")
        if protocol not in ("tcp", "udp", "sctp"):
            raise InvalidParameter(f"invalid protocol {protocol!r}")
        if not 0 < target < 65536 or not 0 <= published < 65536:
            raise InvalidParameter(f"invalid port {target}:{published}")
        out.append(HostPort(target=target, published=published, protocol=protocol))  # type: ignore[arg-type]
    return out


MIN_CERT_EXPIRY_NS = 3600 * 10**9  # swarmkit's ca.MinNodeCertExpiration


def check_swarm_features(spec: Document, current: Document | None) -> None:
    """What a SwarmSpec may ask that berth does not do, refused rather than stored and ignored:
    autolock (the state is not encrypted at rest), and a new or external root CA (`docker
    swarm ca --rotate`, `--external-ca`: berth's CA is the one made at init, see swarmca); and
    a certificate expiry under swarmkit's minimum."""
    ca = _dict(spec, "CAConfig")
    expiry = ca.get("NodeCertExpiry")
    if isinstance(expiry, int) and 0 < expiry < MIN_CERT_EXPIRY_NS:
        raise InvalidParameter("rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s")
    if _dict(spec, "EncryptionConfig").get("AutoLockManagers"):
        raise NotImplementedByBerth("autolock is not supported by berth: the swarm's state is not encrypted at rest")
    rotate = int(ca.get("ForceRotate") or 0) > int(_dict(current or {}, "CAConfig").get("ForceRotate") or 0)
    if rotate or ca.get("ExternalCAs") or ca.get("SigningCACert") or ca.get("SigningCAKey"):
        raise NotImplementedByBerth(
            "berth does not rotate the swarm's root CA or use an external or given CA: the swarm keeps "
            "the CA made at init"
        )


def template_of(spec: Document) -> Document:
    return _dict(spec, "TaskTemplate")


def container_of(template: Document) -> Document:
    return _dict(template, "ContainerSpec")


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


_MOUNT_TYPES = ("bind", "volume", "tmpfs")


def mounts_of(template: Document) -> list[Document]:
    """ContainerSpec.Mounts: Docker's Mount objects, as `docker run --mount` sends them in
    HostConfig.Mounts; the node's engine checks each as it checks a container's (a bind
    source missing on that node rejects the task there, as dockerd's does)."""
    mounts = container_of(template).get("Mounts") or []
    if not isinstance(mounts, list):
        raise InvalidParameter("Mounts must be a list")
    for mount in mounts:
        if not isinstance(mount, dict) or not mount.get("Target"):
            raise InvalidParameter("invalid mount config: Target must not be empty")
        if (mount.get("Type") or "volume") not in _MOUNT_TYPES:
            raise InvalidParameter(f"invalid mount config for type {mount.get('Type')!r}: berth's swarm mode mounts bind, volume and tmpfs")
    return mounts


def health_of(template: Document) -> HealthConfig | None:
    """ContainerSpec.HealthCheck (Docker's HealthConfig): the node runs it as dockerd runs a
    container's, and a task is `running` only once healthy (swarmkit's health-aware tasks)."""
    raw = container_of(template).get("HealthCheck")
    if not raw:
        return None
    try:
        return msgspec.convert(raw, HealthConfig)
    except msgspec.ValidationError as exc:
        raise InvalidParameter(f"invalid HealthCheck: {exc}") from None


def limits_of(template: Document) -> tuple[int, int]:
    limits = _dict(_dict(template, "Resources"), "Limits")
    return _int(limits, "NanoCPUs"), _int(limits, "MemoryBytes")


def reservations_of(template: Document) -> tuple[int, int]:
    reserved = _dict(_dict(template, "Resources"), "Reservations")
    return _int(reserved, "NanoCPUs"), _int(reserved, "MemoryBytes")


def check_node_spec(spec: Document) -> Document:
    if not isinstance(spec, dict):
        raise InvalidParameter("invalid node spec")
    spec = go_names(spec, NODE_SCHEMA)
    _refuse_unknown(spec, {"Name", "Labels", "Role", "Availability"}, "NodeSpec")
    if spec.get("Role") not in (None, "", "manager", "worker"):
        raise InvalidParameter(f"invalid role {spec.get('Role')!r}")
    if spec.get("Availability") not in (None, "", "active", "pause", "drain"):
        raise InvalidParameter(f"invalid availability {spec.get('Availability')!r}")
    return spec


# --- Go's field matching ---------------------------------------------------------------------------
# dockerd decodes specs with Go's encoding/json, which matches field names case-insensitively
# (docker-py sends {"replicated": {"Replicas": 2}}): keys are put in Docker's spelling first.
# None: a leaf (its keys, if any, are the user's: labels).
_Schema = dict[str, "_Schema | None"]
_PLATFORM: _Schema = {"Architecture": None, "OS": None}
_UPDATE: _Schema = {k: None for k in ("Parallelism", "Delay", "FailureAction", "Monitor", "MaxFailureRatio", "Order")}
_CONTAINER: _Schema = {
    **{k: None for k in (
        "Image", "Labels", "Command", "Args", "Hostname", "Env", "Dir", "User", "Groups", "Privileges",
        "Init", "StopSignal", "StopGracePeriod", "HealthCheck", "Hosts", "Secrets", "Configs", "Isolation",
        "Sysctls", "CapabilityAdd", "CapabilityDrop", "Ulimits", "TTY", "OpenStdin", "ReadOnly", "Mounts",
    )},
    "DNSConfig": {"Nameservers": None, "Search": None, "Options": None},
}  # fmt: skip
_TEMPLATE: _Schema = {
    "ContainerSpec": _CONTAINER,
    "Resources": {
        "Limits": {"NanoCPUs": None, "MemoryBytes": None, "Pids": None},
        "Reservations": {"NanoCPUs": None, "MemoryBytes": None, "GenericResources": None},
    },
    "RestartPolicy": {"Condition": None, "Delay": None, "MaxAttempts": None, "Window": None},
    "Placement": {"Constraints": None, "Preferences": None, "MaxReplicas": None, "Platforms": [_PLATFORM]},  # type: ignore[dict-item]
    **{k: None for k in ("PluginSpec", "NetworkAttachmentSpec", "Networks", "LogDriver", "ForceUpdate", "Runtime")},
}
SERVICE_SCHEMA: _Schema = {
    "Name": None,
    "Labels": None,
    "TaskTemplate": _TEMPLATE,
    "Mode": {
        "Replicated": {"Replicas": None},
        "Global": {},
        "ReplicatedJob": {"MaxConcurrent": None, "TotalCompletions": None},
        "GlobalJob": {},
    },
    "UpdateConfig": _UPDATE,
    "RollbackConfig": _UPDATE,
    "Networks": None,
    "EndpointSpec": {
        "Mode": None,
        "Ports": [{k: None for k in ("Name", "Protocol", "TargetPort", "PublishedPort", "PublishMode")}],  # type: ignore[dict-item]
    },
}
NODE_SCHEMA: _Schema = {"Name": None, "Labels": None, "Role": None, "Availability": None}


def go_names(doc: Any, schema: Any) -> Any:
    """`doc` with its known keys spelled as Docker spells them, at every level of `schema`."""
    if isinstance(schema, list) and isinstance(doc, list):
        return [go_names(item, schema[0]) for item in doc]
    if not isinstance(schema, dict) or not isinstance(doc, dict):
        return doc
    names = {k.lower(): k for k in schema}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = names.get(key.lower(), key) if isinstance(key, str) else key
        if name in out and name != key:
            continue  # an exact spelling wins over one that differs in case, as in Go
        out[name] = go_names(value, schema.get(name))
    return out
