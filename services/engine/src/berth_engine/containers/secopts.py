"""`--security-opt`, as moby's parseSecurityOpt reads HostConfig.SecurityOpt."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from berth_contracts.errors import InvalidParameter

log = logging.getLogger(__name__)

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class SecurityOpts:
    seccomp: str = ""  # "" default profile, "unconfined", or a profile's JSON text
    no_new_privileges: bool = False


def _apparmor_enabled() -> bool:
    try:
        return Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        return False


def _selinux_enabled() -> bool:
    return Path("/sys/fs/selinux/enforce").exists()


def parse_security_opts(opts: list[str] | None) -> SecurityOpts:
    """moby's rules and error texts. label= is accepted and unused, as dockerd does on a host
    without SELinux (on a SELinux host berth, which applies no labels, refuses it but for
    label=disable); apparmor= likewise without AppArmor (on a host that has AppArmor, berth
    applies no profile: only "unconfined" is accepted)."""
    seccomp = ""
    nnp = False
    for opt in opts or []:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if opt == "disable":  # label=disable's short form
            continue
        if "=" in opt:
            key, value = opt.split("=", 1)
        elif ":" in opt:
            key, value = opt.split(":", 1)
        else:
            raise InvalidParameter(f"invalid --security-opt 1: {json.dumps(opt)}")
        if key == "label":
            if value != "disable" and _selinux_enabled():
                raise InvalidParameter(
                    f"berth does not apply SELinux labels: --security-opt {opt} is refused "
                    "(label=disable is accepted)"
                )
            continue
        if key == "apparmor":
            if value != "unconfined" and _apparmor_enabled():
                raise InvalidParameter(
                    f"berth does not apply AppArmor profiles: --security-opt {opt} is refused "
                    "(apparmor=unconfined is accepted)"
                )
            continue
        if key == "seccomp":
            seccomp = "" if value == "builtin" else value
            if seccomp not in ("", "unconfined"):
                try:
                    json.loads(seccomp)
                except ValueError as exc:
                    raise InvalidParameter(f"Decoding seccomp profile failed: {exc}") from None
            continue
        if key == "no-new-privileges":
            if value not in _TRUE + _FALSE:
                raise InvalidParameter(f"invalid --security-opt 2: {json.dumps(opt)}")
            nnp = value in _TRUE
            continue
        raise InvalidParameter(f"invalid --security-opt 2: {json.dumps(opt)}")
    return SecurityOpts(seccomp=seccomp, no_new_privileges=nnp)
