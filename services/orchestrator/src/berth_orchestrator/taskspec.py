"""A service's task template as its node runs it: the container's HostConfig as moby's
container adapter makes it, its mounts, health check, resources, and its secrets' and configs'
files. Each is checked when a service is created or updated (specs.check_service_spec)."""

from __future__ import annotations

import base64
import binascii
import posixpath
from dataclasses import dataclass

import msgspec
from berth_contracts.docker import HealthConfig, HostConfig, LogConfig, Ulimit
from berth_contracts.errors import InvalidParameter

from berth_orchestrator.records import Document
from berth_orchestrator.specdoc import container_of, integer, obj, strings

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


def host_config_of(template: Document) -> HostConfig:
    """What moby's container adapter puts in a task container's HostConfig from the task
    template (caps, groups, hosts, DNS, sysctls, ulimits, OOM score, privileges, log driver);
    the node's engine checks it as it checks `docker run`'s."""
    container = container_of(template)
    dns = obj(container, "DNSConfig")
    sysctls = obj(container, "Sysctls")
    log_driver = obj(template, "LogDriver")
    try:
        ulimits = msgspec.convert(container.get("Ulimits") or [], list[Ulimit])
        log_options = msgspec.convert(log_driver.get("Options") or {}, dict[str, str])
    except msgspec.ValidationError as exc:
        raise InvalidParameter(f"invalid ContainerSpec: {exc}") from None
    # swarmkit keeps /etc/hosts lines ("IP name [aliases]"), HostConfig "name:IP"; moby takes
    # the canonical name only.
    hosts = [f"{parts[1]}:{parts[0]}" for parts in (str(h).split() for h in strings(container, "Hosts") or []) if len(parts) > 1]
    return HostConfig(
        cap_add=strings(container, "CapabilityAdd"),
        cap_drop=strings(container, "CapabilityDrop"),
        group_add=strings(container, "Groups"),
        extra_hosts=hosts or None,
        dns=strings(dns, "Nameservers"),
        dns_search=strings(dns, "Search"),
        dns_options=strings(dns, "Options"),
        sysctls={str(k): str(v) for k, v in sysctls.items()} or None,
        ulimits=ulimits or None,
        oom_score_adj=integer(container, "OomScoreAdj"),
        security_opt=security_opts_of(template) or None,
        log_config=LogConfig(type=str(log_driver.get("Name") or ""), config=log_options or None),
    )


def security_opts_of(template: Document) -> list[str]:
    """ContainerSpec.Privileges as moby's container adapter turns it into SecurityOpt."""
    privileges = obj(container_of(template), "Privileges")
    if privileges.get("CredentialSpec"):
        raise InvalidParameter("Privileges.CredentialSpec (Windows containers) is not supported by berth")
    opts = []
    selinux = obj(privileges, "SELinuxContext")
    if selinux.get("Disable"):
        opts.append("label=disable")
    opts += [f"label={word}:{selinux[key]}" for key, word in _SELINUX if selinux.get(key)]
    seccomp = obj(privileges, "Seccomp")
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
    apparmor = obj(privileges, "AppArmor").get("Mode") or "default"
    if apparmor not in ("default", "disabled"):
        raise InvalidParameter(f"invalid Privileges.AppArmor.Mode: {apparmor!r}")
    if apparmor == "disabled":
        opts.append("apparmor=unconfined")
    if privileges.get("NoNewPrivileges"):
        opts.append("no-new-privileges=true")
    return opts


_SELINUX = (("User", "user"), ("Role", "role"), ("Type", "type"), ("Level", "level"))


def generic_resources_of(template: Document) -> list[tuple[str, int | str]]:
    """Resources.Reservations.GenericResources: (kind, count), or (kind, name) for a named unit
    (dockerd stores it; swarmkit's scheduler places counts only, so that task stays pending); a
    node offers them with `berth up --node-generic-resource` (dockerd's flag)."""
    out: list[tuple[str, int | str]] = []
    for item in obj(obj(template, "Resources"), "Reservations").get("GenericResources") or []:
        named, discrete = (obj(item, k) if isinstance(item, dict) else {} for k in ("NamedResourceSpec", "DiscreteResourceSpec"))
        if not isinstance(item, dict) or len(item) != 1 or not (named or discrete):
            raise InvalidParameter("invalid generic resource: expected one NamedResourceSpec or DiscreteResourceSpec")
        spec = named or discrete
        kind, value = spec.get("Kind"), spec.get("Value")
        if not isinstance(kind, str) or not kind or not isinstance(value, str if named else int) or isinstance(value, bool):
            raise InvalidParameter(f"invalid generic resource {item!r}")
        out.append((kind, value))
    return out


def generic_counts(template: Document) -> list[tuple[str, int]] | None:
    """The generic resources the scheduler claims for a task: None when no node can give them
    (a named unit, as swarmkit's HasEnough takes counts only; or a reservation stored before
    berth checked it): the task waits."""
    try:
        asked = generic_resources_of(template)
    except InvalidParameter:
        return None
    counts = [(kind, n) for kind, n in asked if isinstance(n, int)]
    return counts if len(counts) == len(asked) else None


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
            file = obj(ref, "File")
            target = str(file.get("Name") or "")
            if not object_id or not name:
                raise InvalidParameter(f"malformed {kind} reference: {kind.capitalize()}ID and {kind.capitalize()}Name are needed")
            if not target:
                raise InvalidParameter(f"malformed file {kind} reference: the file's name is needed")
            path = posixpath.normpath(posixpath.join(_FILE_ROOT[kind], target))
            for owner in ("UID", "GID"):
                if not str(file.get(owner) or "0").isdigit():
                    raise InvalidParameter(f"invalid {owner} {file.get(owner)!r} for {kind} {name}: a number is needed")
            mode = integer(file, "Mode", 0o444)
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
    limits = obj(obj(template, "Resources"), "Limits")
    return integer(limits, "NanoCPUs"), integer(limits, "MemoryBytes")


def reservations_of(template: Document) -> tuple[int, int]:
    reserved = obj(obj(template, "Resources"), "Reservations")
    return integer(reserved, "NanoCPUs"), integer(reserved, "MemoryBytes")
