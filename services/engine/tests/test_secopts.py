"""--security-opt parsing (moby's parseSecurityOpt)."""

from __future__ import annotations

import pytest
from berth_contracts.errors import InvalidParameter
from berth_engine.secopts import SecurityOpts, parse_security_opts


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
