"""Checking the specs clients send (ServiceSpec, NodeSpec, SwarmSpec) and reading what the
orchestrator acts on out of them.

berth runs a subset of swarmkit's service spec. A field it does not act on is refused by name
(400), never stored and silently ignored: overlay networks, the ingress routing mesh, secrets,
configs and jobs are not there yet (README: swarm mode).
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import posixpath
import re
from dataclasses import dataclass
from typing import Any

import msgspec
from berth_contracts.docker import HealthConfig, HostConfig, LogConfig, Ulimit
from berth_contracts.errors import InvalidParameter, NotImplementedByBerth
from berth_contracts.swarm import HostPort

from berth_orchestrator.records import Document

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
_UNSUPPORTED_WORDS = {
    "Networks": "overlay networks (--network) are not supported by berth's swarm mode yet",
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
    replicas: int  # a replicated job's TotalCompletions
    job: bool = False  # runs to completion (replicated-job, global-job)
    max_concurrent: int = 0  # a replicated job's tasks at once

    @property
    def name(self) -> str:
        return ("global" if self.global_mode else "replicated") + ("-job" if self.job else "")


def service_mode(spec: Document) -> Mode:
    mode = _dict(spec, "Mode")
    if "GlobalJob" in mode:
        return Mode(global_mode=True, replicas=0, job=True)
    if "ReplicatedJob" in mode:
        # The API's defaults: one at a time, as many completions as run at once.
        job = _dict(mode, "ReplicatedJob")
        concurrent = _int(job, "MaxConcurrent", 1)
        total = _int(job, "TotalCompletions", concurrent)
        if concurrent < 0 or total < 0:
            raise InvalidParameter("MaxConcurrent and TotalCompletions must be non-negative integers")
        return Mode(global_mode=False, replicas=total, job=True, max_concurrent=concurrent)
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
    _refuse_unknown(placement, {"Constraints", "Platforms", "MaxReplicas", "Preferences"}, "Placement")
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
    value = _int(_dict(template, "Placement"), "MaxReplicas")
    if value < 0:
        raise InvalidParameter("MaxReplicas must be a non-negative integer")
    return value


def spread_over(template: Document) -> list[str]:
    """Placement.Preferences: the labels whose values the tasks spread evenly over, outermost
    first (swarmkit's spread preference: node.labels.* or engine.labels.*; a node without the
    label, or any node for another descriptor, is one more value)."""
    out = []
    for pref in _dict(template, "Placement").get("Preferences") or []:
        spread = _dict(pref, "Spread") if isinstance(pref, dict) else {}
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
    _refuse_unknown(dns, {"Nameservers", "Search", "Options"}, "ContainerSpec.DNSConfig")
    log_driver = _dict(template, "LogDriver")
    _refuse_unknown(log_driver, {"Name", "Options"}, "TaskTemplate.LogDriver")
    template.setdefault("ForceUpdate", 0)  # swarmkit always shows it
    mounts_of(template)
    health_of(template)
    host_config_of(template)
    file_refs(template)
    endpoint = _dict(spec, "EndpointSpec")
    host_ports(spec)
    if (endpoint.get("Mode") or "vip") not in ("vip", "dnsrr"):
        raise InvalidParameter(f"invalid endpoint mode {endpoint.get('Mode')!r}")
    resources = _dict(template, "Resources")
    _refuse_unknown(resources, {"Limits", "Reservations"}, "Resources")
    _refuse_unknown(_dict(resources, "Limits"), {"NanoCPUs", "MemoryBytes"}, "Resources.Limits")
    _refuse_unknown(_dict(resources, "Reservations"), {"NanoCPUs", "MemoryBytes", "GenericResources"}, "Resources.Reservations")
    generic_resources_of(template)
    mode = service_mode(spec)
    if mode.job:
        if not mode.global_mode:  # swarmkit stores the defaults
            spec["Mode"] = {"ReplicatedJob": {"MaxConcurrent": mode.max_concurrent, "TotalCompletions": mode.replicas}}
        if _dict(spec, "UpdateConfig") or _dict(spec, "RollbackConfig"):
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
    # At init (no current spec) the CA is new anyway: ForceRotate is only recorded, as swarmkit does.
    rotate = current is not None and int(ca.get("ForceRotate") or 0) > int(_dict(current, "CAConfig").get("ForceRotate") or 0)
    if rotate or ca.get("ExternalCAs") or ca.get("SigningCACert") or ca.get("SigningCAKey"):
        raise NotImplementedByBerth(
            "berth does not rotate the swarm's root CA or use an external or given CA: the swarm keeps "
            "the CA made at init"
        )


def same_template(a: Document, b: Document) -> bool:
    """Whether a service's tasks need replacing (a spec stored by an older berth may lack
    ForceUpdate or spell Healthcheck "HealthCheck": the same template)."""

    def settled(template: Document) -> Document:
        out = go_names(template, _TEMPLATE)
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
    """ContainerSpec.Healthcheck (Docker's HealthConfig): the node runs it as dockerd runs a
    container's, and a task is `running` only once healthy (swarmkit's health-aware tasks)."""
    container = container_of(template)
    raw = container.get("Healthcheck") or container.get("HealthCheck")  # as stored before 2026-12-05
    if not raw:
        return None
    try:
        return msgspec.convert(raw, HealthConfig)
    except msgspec.ValidationError as exc:
        raise InvalidParameter(f"invalid HealthCheck: {exc}") from None


def _strings(doc: Document, key: str) -> list[str] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"{key} must be a list of strings")
    return value or None


def host_config_of(template: Document) -> HostConfig:
    """What moby's container adapter puts in a task container's HostConfig from the task
    template (caps, groups, hosts, DNS, sysctls, ulimits, OOM score, privileges, log driver);
    the node's engine checks it as it checks `docker run`'s."""
    container = container_of(template)
    dns = _dict(container, "DNSConfig")
    sysctls = _dict(container, "Sysctls")
    log_driver = _dict(template, "LogDriver")
    try:
        ulimits = msgspec.convert(container.get("Ulimits") or [], list[Ulimit])
        log_options = msgspec.convert(log_driver.get("Options") or {}, dict[str, str])
    except msgspec.ValidationError as exc:
        raise InvalidParameter(f"invalid ContainerSpec: {exc}") from None
    # swarmkit keeps /etc/hosts lines ("IP name [aliases]"), HostConfig "name:IP"; moby takes
    # the canonical name only.
    hosts = [f"{parts[1]}:{parts[0]}" for parts in (str(h).split() for h in _strings(container, "Hosts") or []) if len(parts) > 1]
    return HostConfig(
        cap_add=_strings(container, "CapabilityAdd"),
        cap_drop=_strings(container, "CapabilityDrop"),
        group_add=_strings(container, "Groups"),
        extra_hosts=hosts or None,
        dns=_strings(dns, "Nameservers"),
        dns_search=_strings(dns, "Search"),
        dns_options=_strings(dns, "Options"),
        sysctls={str(k): str(v) for k, v in sysctls.items()} or None,
        ulimits=ulimits or None,
        oom_score_adj=_int(container, "OomScoreAdj"),
        security_opt=security_opts_of(template) or None,
        log_config=LogConfig(type=str(log_driver.get("Name") or ""), config=log_options or None),
    )


def security_opts_of(template: Document) -> list[str]:
    """ContainerSpec.Privileges as moby's container adapter turns it into SecurityOpt."""
    privileges = _dict(container_of(template), "Privileges")
    if privileges.get("CredentialSpec"):
        raise InvalidParameter("Privileges.CredentialSpec (Windows containers) is not supported by berth")
    opts = []
    selinux = _dict(privileges, "SELinuxContext")
    if selinux.get("Disable"):
        opts.append("label=disable")
    opts += [f"label={word}:{selinux[key]}" for key, word in _SELINUX if selinux.get(key)]
    seccomp = _dict(privileges, "Seccomp")
    mode = seccomp.get("Mode") or "default"
    if mode == "unconfined":
        opts.append("seccomp=unconfined")
    elif mode == "custom":
        try:  # Go's []byte: base64 in JSON
            opts.append("seccomp=" + base64.b64decode(str(seccomp.get("Profile") or ""), validate=True).decode())
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidParameter("invalid Privileges.Seccomp.Profile: not base64 of a JSON profile") from None
    elif mode != "default":
        raise InvalidParameter(f"invalid Privileges.Seccomp.Mode: {mode!r}")
    apparmor = _dict(privileges, "AppArmor").get("Mode") or "default"
    if apparmor not in ("default", "disabled"):
        raise InvalidParameter(f"invalid Privileges.AppArmor.Mode: {apparmor!r}")
    if apparmor == "disabled":
        opts.append("apparmor=unconfined")
    if privileges.get("NoNewPrivileges"):
        opts.append("no-new-privileges=true")
    return opts


_SELINUX = (("User", "user"), ("Role", "role"), ("Type", "type"), ("Level", "level"))


def generic_resources_of(template: Document) -> list[tuple[str, str | int]]:
    """Resources.Reservations.GenericResources: (kind, a named value or a count). berth's
    nodes advertise none (dockerd's --node-generic-resource), so a task reserving any stays
    pending, as on a dockerd whose nodes have none."""
    out: list[tuple[str, str | int]] = []
    for item in _dict(_dict(template, "Resources"), "Reservations").get("GenericResources") or []:
        named, discrete = (_dict(item, k) if isinstance(item, dict) else {} for k in ("NamedResourceSpec", "DiscreteResourceSpec"))
        if not isinstance(item, dict) or len(item) != 1 or not (named or discrete):
            raise InvalidParameter("invalid generic resource: expected one NamedResourceSpec or DiscreteResourceSpec")
        spec = named or discrete
        kind, value = spec.get("Kind"), spec.get("Value")
        if not isinstance(kind, str) or not kind or not isinstance(value, str if named else int) or isinstance(value, bool):
            raise InvalidParameter(f"invalid generic resource {item!r}")
        out.append((kind, value))
    return out


@dataclass(frozen=True)
class FileRef:
    """A service's reference to a secret or config: where its file goes in the container."""

    kind: str  # "secret" or "config"
    object_id: str
    name: str
    target: str  # absolute
    uid: str
    gid: str
    mode: int


# Where a relative target goes (moby's containerSecretMountPath, and "/" for configs).
_FILE_ROOT = {"secret": "/run/secrets", "config": "/"}


def file_refs(template: Document) -> list[FileRef]:
    """ContainerSpec.Secrets and .Configs, checked as swarmkit checks them (a file target each,
    no two on the same target); a config given to the runtime (Windows credential specs) is
    refused."""
    out: list[FileRef] = []
    container = container_of(template)
    for kind, key in (("secret", "Secrets"), ("config", "Configs")):
        refs = container.get(key) or []
        if not isinstance(refs, list):
            raise InvalidParameter(f"{key} must be a list")
        for ref in refs:
            if not isinstance(ref, dict):
                raise InvalidParameter(f"invalid {kind} reference")
            if ref.get("Runtime"):
                raise InvalidParameter("configs given to the runtime (credential specs) are not supported by berth")
            object_id = str(ref.get(f"{kind.capitalize()}ID") or "")
            name = str(ref.get(f"{kind.capitalize()}Name") or "")
            file = _dict(ref, "File")
            target = str(file.get("Name") or "")
            if not object_id or not name:
                raise InvalidParameter(f"malformed {kind} reference: {kind.capitalize()}ID and {kind.capitalize()}Name are needed")
            if not target:
                raise InvalidParameter(f"malformed file {kind} reference: the file's name is needed")
            path = posixpath.normpath(posixpath.join(_FILE_ROOT[kind], target))
            for owner in ("UID", "GID"):
                if not str(file.get(owner) or "0").isdigit():
                    raise InvalidParameter(f"invalid {owner} {file.get(owner)!r} for {kind} {name}: a number is needed")
            mode = _int(file, "Mode", 0o444)
            if not 0 <= mode <= 0o777:
                raise InvalidParameter(f"invalid file mode {mode:o} for {kind} {name}")
            out.append(FileRef(kind, object_id, name, path, str(file.get("UID") or "0"), str(file.get("GID") or "0"), mode))
    targets: dict[str, FileRef] = {}
    for ref in out:
        if ref.target in targets:
            raise InvalidParameter(
                f"{ref.kind} references '{targets[ref.target].name}' and '{ref.name}' have a conflicting target: "
                f"'{ref.target}'"
            )
        targets[ref.target] = ref
    return out


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
Schema = dict[str, "Schema | list[Schema] | None"]  # a list: each item of that schema
_PLATFORM: Schema = {"Architecture": None, "OS": None}
_FILE: Schema = {"Name": None, "UID": None, "GID": None, "Mode": None}
_UPDATE: Schema = {k: None for k in ("Parallelism", "Delay", "FailureAction", "Monitor", "MaxFailureRatio", "Order")}
_CONTAINER: Schema = {
    **{k: None for k in (
        "Image", "Labels", "Command", "Args", "Hostname", "Env", "Dir", "User", "Groups", "Privileges",
        "Init", "StopSignal", "StopGracePeriod", "Healthcheck", "Hosts", "Secrets", "Configs", "Isolation",
        "Sysctls", "CapabilityAdd", "CapabilityDrop", "TTY", "OpenStdin", "ReadOnly", "Mounts", "OomScoreAdj",
    )},
    "DNSConfig": {"Nameservers": None, "Search": None, "Options": None},
    "Ulimits": [{"Name": None, "Soft": None, "Hard": None}],
    "Secrets": [{"File": _FILE, "SecretID": None, "SecretName": None}],
    "Configs": [{"File": _FILE, "Runtime": None, "ConfigID": None, "ConfigName": None}],
    "Privileges": {
        "CredentialSpec": None,
        "SELinuxContext": {k: None for k in ("Disable", "User", "Role", "Type", "Level")},
        "Seccomp": {"Mode": None, "Profile": None},
        "AppArmor": {"Mode": None},
        "NoNewPrivileges": None,
    },
}  # fmt: skip
_TEMPLATE: Schema = {
    "ContainerSpec": _CONTAINER,
    "Resources": {
        "Limits": {"NanoCPUs": None, "MemoryBytes": None, "Pids": None},
        "Reservations": {"NanoCPUs": None, "MemoryBytes": None, "GenericResources": None},
    },
    "RestartPolicy": {"Condition": None, "Delay": None, "MaxAttempts": None, "Window": None},
    "Placement": {
        "Constraints": None, "Preferences": [{"Spread": {"SpreadDescriptor": None}}], "MaxReplicas": None,
        "Platforms": [_PLATFORM],
    },
    "LogDriver": {"Name": None, "Options": None},
    **{k: None for k in ("PluginSpec", "NetworkAttachmentSpec", "Networks", "ForceUpdate", "Runtime")},
}
SERVICE_SCHEMA: Schema = {
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
        "Ports": [{k: None for k in ("Name", "Protocol", "TargetPort", "PublishedPort", "PublishMode")}],
    },
}
NODE_SCHEMA: Schema = {"Name": None, "Labels": None, "Role": None, "Availability": None}


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
