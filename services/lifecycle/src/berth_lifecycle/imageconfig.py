"""Image config JSON (OCI / Docker) → wire types, and `docker import --change` instructions."""

from __future__ import annotations

import copy
import json
import posixpath
import re
import shlex
from typing import Any

import msgspec
from berth_common.gotime import ZERO_TIME
from berth_contracts.docker import ContainerConfig, HealthConfig
from berth_contracts.errors import InvalidParameter
from berth_contracts.lifecycle import ImageRecord

from berth_lifecycle.metadata import ImageRow


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A JSON object from a registry or an archive; InvalidParameter naming `what` otherwise."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidParameter(f"invalid {what}: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidParameter(f"invalid {what}: not a JSON object")
    return doc


def parse_config(raw: bytes) -> dict[str, Any]:
    return json_object(raw, "image config")


def diff_ids_of(doc: dict[str, Any]) -> list[str]:
    rootfs = doc.get("rootfs") or {}
    ids = rootfs.get("diff_ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidParameter("invalid image config: rootfs.diff_ids")
    return list(ids)


def container_config(doc: dict[str, Any]) -> ContainerConfig:
    cfg = doc.get("config") or {}
    try:
        return msgspec.convert(cfg, ContainerConfig, strict=False)
    except msgspec.ValidationError:
        # A field of an unexpected type: keep what converts instead of refusing the image.
        good = {}
        for key, value in cfg.items():
            try:
                msgspec.convert({key: value}, ContainerConfig, strict=False)
                good[key] = value
            except msgspec.ValidationError:
                continue
        return msgspec.convert(good, ContainerConfig, strict=False)


def image_record(row: ImageRow, names: list[str], familiar: Any) -> ImageRecord:
    """Build the wire record; `familiar` maps a stored full name to its familiar form."""
    doc = parse_config(row.config)
    tags = [familiar(n) for n in names if "@" not in n]
    digests = [familiar(n) for n in names if "@" in n]
    return ImageRecord(
        id=row.id,
        repo_tags=tags,
        repo_digests=digests,
        created=str(doc.get("created") or ZERO_TIME),
        size=row.size,
        config=container_config(doc),
        diff_ids=row.diff_ids,
        architecture=str(doc.get("architecture") or "amd64"),
        os=str(doc.get("os") or "linux"),
        variant=str(doc.get("variant") or ""),
        author=str(doc.get("author") or ""),
        comment=str(doc.get("comment") or ""),
        docker_version=str(doc.get("docker_version") or ""),
        parent=str(doc.get("parent") or ""),
        last_tag_time=row.last_tag_time if names else ZERO_TIME,
    )


# --- `docker import --change` ------------------------------------------------------------------

_CHANGE_RE = re.compile(r"^\s*(\w+)\s*(.*?)\s*$", re.S)
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def _json_or_shell(rest: str) -> list[str]:
    """Dockerfile exec form (a JSON array of strings) or shell form (wrapped in /bin/sh -c)."""
    if rest.startswith("["):
        try:
            value = json.loads(rest)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        except ValueError:
            pass
    return ["/bin/sh", "-c", rest]


def _pairs(rest: str, what: str) -> dict[str, str]:
    """`k=v k2="v 2"`, or the legacy `k v` form (one pair, the value is the rest)."""
    words = shlex.split(rest)
    if not words:
        raise InvalidParameter(f"{what} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = rest.partition(" ")
        return {key: value.strip()}
    out: dict[str, str] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise InvalidParameter(f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        out[key] = value
    return out


def _duration(text: str) -> int:
    total, pos = 0, 0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNIT_NS[m.group(2)])
        pos = m.end()
    if pos != len(text) or not text:
        raise InvalidParameter(f"invalid duration {text!r}")
    return total


def _healthcheck(rest: str) -> HealthConfig:
    words = rest.split()
    if words and words[0].upper() == "NONE":
        return HealthConfig(test=["NONE"])
    opts: dict[str, int] = {}
    while words and words[0].startswith("--"):
        flag, _, value = words.pop(0)[2:].partition("=")
        if flag == "retries":
            opts["retries"] = int(value)
        elif flag in ("interval", "timeout", "start-period", "start-interval"):
            opts[flag.replace("-", "_")] = _duration(value)
        else:
            raise InvalidParameter(f"Unknown flag: {flag}")
    if not words or words[0].upper() != "CMD":
        raise InvalidParameter("Unknown type in HEALTHCHECK (try CMD)")
    cmd_text = rest[rest.upper().index("CMD") + 3 :].strip()
    argv = _json_or_shell(cmd_text)
    test = ["CMD", *argv] if cmd_text.startswith("[") and argv[:2] != ["/bin/sh", "-c"] else ["CMD-SHELL", cmd_text]
    return HealthConfig(test=test, **opts)


def _field(cfg: dict[str, Any], key: str, empty: Any) -> Any:
    """cfg[key], made `empty` first when missing or None (a base config's unset field)."""
    if cfg.get(key) is None:
        cfg[key] = empty
    return cfg[key]


# dockerd 20.10's validCommitCommands for `docker commit --change` (its words are lower case).
COMMIT_CHANGES = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "USER",
                  "VOLUME", "WORKDIR"}  # fmt: skip


def apply_changes(changes: list[str], base: ContainerConfig | None = None, *, commit: bool = False) -> ContainerConfig:
    """Build the config of an imported image from Dockerfile-like lines, as dockerd does;
    on top of `base` (a copy) for `docker commit`, which accepts only COMMIT_CHANGES."""
    cfg: dict[str, Any] = {}
    if base is not None:
        cfg = {f: copy.deepcopy(getattr(base, f)) for f in base.__struct_fields__}
    for change in changes:
        if not change.strip():
            continue
        m = _CHANGE_RE.match(change)
        if not m:
            raise InvalidParameter(f"{change} is not a valid change command")
        instr, rest = m.group(1).upper(), m.group(2)
        if commit and instr not in COMMIT_CHANGES:
            raise InvalidParameter(f"{instr.lower()} is not a valid change command")
        if instr == "CMD":
            cfg["cmd"] = _json_or_shell(rest)
        elif instr == "ENTRYPOINT":
            cfg["entrypoint"] = _json_or_shell(rest)
        elif instr == "ENV":
            env = [e for e in cfg.get("env") or [] if e.split("=", 1)[0] not in _pairs(rest, "ENV")]
            env += [f"{k}={v}" for k, v in _pairs(rest, "ENV").items()]
            cfg["env"] = env
        elif instr == "WORKDIR":
            cfg["working_dir"] = posixpath.join(cfg.get("working_dir") or "/", rest)
        elif instr == "USER":
            cfg["user"] = rest
        elif instr == "EXPOSE":
            ports = _field(cfg, "exposed_ports", {})
            for port in rest.split():
                number, _, proto = port.partition("/")
                lo, _, hi = number.partition("-")
                for p in range(int(lo), int(hi or lo) + 1):
                    ports[f"{p}/{(proto or 'tcp').lower()}"] = {}
        elif instr == "LABEL":
            _field(cfg, "labels", {}).update(_pairs(rest, "LABEL"))
        elif instr == "VOLUME":
            vols = _field(cfg, "volumes", {})
            paths = _json_or_shell(rest)
            for path in (rest.split() if paths[:2] == ["/bin/sh", "-c"] else paths):
                vols[path] = {}
        elif instr == "STOPSIGNAL":
            cfg["stop_signal"] = rest
        elif instr == "ONBUILD":
            _field(cfg, "on_build", []).append(rest)
        elif instr == "HEALTHCHECK":
            cfg["healthcheck"] = _healthcheck(rest)
        else:
            raise InvalidParameter(f"{instr} is not a valid change command")
    return ContainerConfig(**cfg)
