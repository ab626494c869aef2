"""--security-opt parsing (moby's parseSecurityOpt)."""

from __future__ import annotations

import pytest
from berth_contracts.errors import InvalidParameter
from berth_engine.containers.secopts import SecurityOpts, parse_security_opts


def test_accepted_forms() -> None:
    assert parse_security_opts(None) == SecurityOpts()
    assert parse_security_opts(["no-new-privileges"]) == SecurityOpts(no_new_privileges=True)
    assert parse_security_opts(["no-new-privileges=false"]) == SecurityOpts()
    assert parse_security_opts(["no-new-privileges:true"]).no_new_privileges
    assert parse_security_opts(["seccomp=unconfined"]).seccomp == "unconfined"
    assert parse_security_opts(["seccomp=builtin"]).seccomp == ""
    assert parse_security_opts(['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']).seccomp.startswith("{")
    assert parse_security_opts(["label=disable", "label:type:x", "disable"]) == SecurityOpts()


@pytest.mark.parametrize(
    ("opt", "message"),
    [
        ("bogus", 'invalid --security-opt 1: "bogus"'),
        ("foo=bar", 'invalid --security-opt 2: "foo=bar"'),
        ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
        ("seccomp={broken", "Decoding seccomp profile failed"),
    ],
)
def test_refused(opt: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message.replace("{", r"\{")):
        parse_security_opts([opt])


def test_mac_options_on_hosts_with_selinux_or_apparmor(monkeypatch: pytest.MonkeyPatch) -> None:
    """berth applies neither SELinux labels nor AppArmor profiles: where the kernel has them,
    asking for one is refused (dockerd would apply it); where it has not, dockerd ignores them."""
    from berth_engine.containers import secopts

    monkeypatch.setattr(secopts, "_selinux_enabled", lambda: False)
    monkeypatch.setattr(secopts, "_apparmor_enabled", lambda: False)
    assert parse_security_opts(["label=type:x", "apparmor=my-profile"]) == SecurityOpts()
    monkeypatch.setattr(secopts, "_selinux_enabled", lambda: True)
    monkeypatch.setattr(secopts, "_apparmor_enabled", lambda: True)
    assert parse_security_opts(["label=disable", "apparmor=unconfined"]) == SecurityOpts()
    with pytest.raises(InvalidParameter, match="does not apply SELinux labels"):
        parse_security_opts(["label=type:x"])
    with pytest.raises(InvalidParameter, match="does not apply AppArmor profiles"):
        parse_security_opts(["apparmor=docker-default"])
