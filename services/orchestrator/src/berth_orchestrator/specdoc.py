"""Reading the spec documents clients send: keys in Go's spelling (dockerd's decoder matches
field names without case), typed fields with Docker's errors, and a field berth does not act on
refused by name (400), never stored and silently ignored."""

from __future__ import annotations

from typing import Any

from berth_contracts.errors import InvalidParameter

from berth_orchestrator.records import Document

_UNSUPPORTED_WORDS = {
    "Networks": "overlay networks (--network) are not supported by berth's swarm mode yet",
}


def is_empty(value: Any) -> bool:
    return value in (None, "", 0, False, "default") or value == {} or value == []


def refuse_unknown(doc: Document, allowed: set[str], where: str) -> None:
    for key, value in doc.items():
        if key in allowed or is_empty(value):
            continue
        if key in _UNSUPPORTED_WORDS:
            raise InvalidParameter(_UNSUPPORTED_WORDS[key])
        raise InvalidParameter(f"{where}.{key} is not supported by berth's swarm mode yet")


def obj(doc: Document, key: str) -> Document:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter(f"{key} must be an object")
    return value


def integer(doc: Document, key: str, default: int = 0) -> int:
    value = doc.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidParameter(f"{key} must be an integer")
    return value


def strings(doc: Document, key: str) -> list[str] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"{key} must be a list of strings")
    return value or None


def template_of(spec: Document) -> Document:
    return obj(spec, "TaskTemplate")


def container_of(template: Document) -> Document:
    return obj(template, "ContainerSpec")


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
        "Init", "StopSignal", "StopGracePeriod", "Healthcheck", "Hosts", "Isolation",
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
TEMPLATE_SCHEMA: Schema = {
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
    "TaskTemplate": TEMPLATE_SCHEMA,
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
