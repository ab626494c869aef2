"""Seccomp for containers: Docker's profile format turned into the OCI `linux.seccomp` runc applies.

berth carries no syscall list of its own. The default is podman's profile (itself Docker's
default), which Debian ships in golang-github-containers-common as
/usr/share/containers/seccomp.json (`BERTH_SECCOMP_PROFILE` names another file); `--security-opt
seccomp=PROFILE.json` sends a profile in the same format, and `seccomp=unconfined` or
`--privileged` runs without one, as with dockerd.

The conversion follows moby's (profiles/seccomp): keep the native architecture and its
sub-architectures from archMap, and keep a rule only when the container's architecture, its
capabilities and the running kernel satisfy the rule's includes and excludes.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from berth_contracts.errors import InternalError, InvalidParameter

DEFAULT_PROFILE = "/usr/share/containers/seccomp.json"
UNCONFINED = "unconfined"

# uname's machine → (libseccomp's name, Go's GOARCH as profiles name it in includes.arches)
_ARCHES = {
    "x86_64": ("SCMP_ARCH_X86_64", "amd64"),
    "aarch64": ("SCMP_ARCH_AARCH64", "arm64"),
    "armv7l": ("SCMP_ARCH_ARM", "arm"),
    "i686": ("SCMP_ARCH_X86", "386"),
    "ppc64le": ("SCMP_ARCH_PPC64LE", "ppc64le"),
    "s390x": ("SCMP_ARCH_S390X", "s390x"),
    "riscv64": ("SCMP_ARCH_RISCV64", "riscv64"),
}
_RULE_KEYS = ("names", "action", "errnoRet", "args")


def default_profile_path() -> Path:
    return Path(os.environ.get("BERTH_SECCOMP_PROFILE") or DEFAULT_PROFILE)


_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def default_profile() -> dict[str, Any]:
    """The default profile, parsed once per change of the file."""
    path = default_profile_path()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        # Never run a container unconfined that asked for the default: refuse, and say why.
        raise InternalError(
            f"seccomp profile {path} not found: install Debian's golang-github-containers-common"
            " (make install does), set BERTH_SECCOMP_PROFILE, or run the container with"
            " --security-opt seccomp=unconfined"
        ) from None
    cached = _cache.get(str(path))
    if cached is None or cached[0] != mtime:
        cached = (mtime, parse(path.read_text()))
        _cache[str(path)] = cached
    return cached[1]


def parse(text: str) -> dict[str, Any]:
    try:
        profile = json.loads(text)
    except ValueError as exc:
        raise InvalidParameter(f"Decoding seccomp profile failed: {exc}") from None
    if not isinstance(profile, dict) or not isinstance(profile.get("defaultAction"), str):
        raise InvalidParameter("Decoding seccomp profile failed: no defaultAction")
    return profile


def _kernel() -> tuple[int, ...]:
    release = platform.release().split("-")[0]
    return tuple(int(p) for p in release.split(".")[:2] if p.isdigit())


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


def _applies(rule: dict[str, Any], goarch: str, caps: set[str], kernel: tuple[int, ...]) -> bool:
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("arches") and goarch not in inc["arches"]:
        return False
    if exc.get("arches") and goarch in exc["arches"]:
        return False
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    if inc.get("minKernel") and kernel < _version(inc["minKernel"]):
        return False
    return not (exc.get("minKernel") and kernel >= _version(exc["minKernel"]))


def to_oci(
    profile: dict[str, Any],
    caps: list[str],
    machine: str | None = None,
    kernel: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """The OCI seccomp object for a container with these capabilities on this machine."""
    machine = machine or platform.machine()
    scmp_arch, goarch = _ARCHES.get(machine, ("", machine))
    kernel = kernel if kernel is not None else _kernel()
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == scmp_arch:
            arches = [scmp_arch, *(entry.get("subArchitectures") or [])]
    if arches:
        out["architectures"] = arches
    have = set(caps)
    rules = []
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, goarch, have, kernel):
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not names:
            continue
        kept = {k: rule[k] for k in _RULE_KEYS if rule.get(k) not in (None, [])}
        kept["names"] = list(names)
        rules.append(kept)
    out["syscalls"] = rules
    return out


def for_container(seccomp: str, privileged: bool, caps: list[str]) -> dict[str, Any] | None:
    """linux.seccomp for config.json, or None to run unconfined. seccomp is the TaskSpec's:
    "" (the default profile), "unconfined", or a profile's JSON text."""
    if privileged or seccomp == UNCONFINED:
        return None
    profile = default_profile() if seccomp in ("", "builtin") else parse(seccomp)
    return to_oci(profile, caps)
