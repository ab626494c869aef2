"""runc's failures worded once, as dockerd words them (berth_agent.runcerrors), classified by the
shim's error kind (berth_agent.shim.runc.runc_error_kind)."""

from pathlib import Path

import pytest
from berth_agent import runcerrors
from berth_agent.shim import proto
from berth_agent.shim import runc as shim_runc
from berth_agent.shim.runc import Runc, RuncError, runc_error_kind
from berth_contracts.errors import (
    Conflict,
    InternalError,
    InvalidParameter,
    NotImplementedByBerth,
    Unavailable,
)


def test_runc_messages_are_classified_once() -> None:
    assert runc_error_kind('exec: "nope": executable file not found in $PATH') == proto.INVALID
    assert runc_error_kind("open /x: Permission denied") == proto.INVALID
    assert runc_error_kind("container not running") == proto.NOT_RUNNING
    assert runc_error_kind('container "abc" does not exist') == proto.NOT_FOUND
    assert runc_error_kind("cgroup trouble") == proto.UNKNOWN
    assert RuncError("container not running").kind == proto.NOT_RUNNING


def test_create_failures_in_dockerds_words() -> None:
    err = runcerrors.create_failed(RuncError('exec: "nope": executable file not found in $PATH'))
    assert isinstance(err, InvalidParameter)
    assert err.message == (
        "failed to create task for container: failed to create shim task: OCI runtime create "
        'failed: exec: "nope": executable file not found in $PATH: unknown'
    )
    assert isinstance(runcerrors.create_failed(RuncError("cgroup trouble")), InternalError)


def test_kinds_not_words_pick_the_class() -> None:
    gone = proto.ShimError(proto.NOT_RUNNING, "anything at all")
    assert isinstance(runcerrors.kill_failed(gone, "c1"), Conflict)
    assert runcerrors.kill_failed(gone, "c1").message == "container c1 is not running"
    assert isinstance(runcerrors.exec_failed(gone, "c1"), Conflict)
    assert isinstance(runcerrors.start_failed(gone, "c1"), Conflict)
    other = proto.ShimError(proto.UNKNOWN, "container not running")  # the words do not decide
    assert isinstance(runcerrors.kill_failed(other, "c1"), InternalError)
    assert runcerrors.exec_failed(other, "c1").message == (
        "OCI runtime exec failed: exec failed: container not running: unknown"
    )


def test_the_agents_own_process_setup_failures_read_as_runcs() -> None:
    err = runcerrors.as_process_setup_error(
        InternalError('exec: "docker-init": executable file not found in $PATH')
    )
    assert isinstance(err, InvalidParameter)
    assert err.message == (
        "failed to create task for container: failed to create shim task: OCI runtime create "
        'failed: runc create failed: unable to start container process: exec: "docker-init": '
        "executable file not found in $PATH: unknown"
    )
    worded = runcerrors.create_failed(RuncError("stat /x: no such file or directory"))
    assert runcerrors.as_process_setup_error(worded) is worded
    # dockerd's own words reach the client unwrapped (no "OCI runtime create failed").
    group = InvalidParameter("Unable to find group x: no matching entries in group file")
    assert runcerrors.as_process_setup_error(group) is group
    for passthrough in (Unavailable("agent down"), NotImplementedByBerth("tty"), Conflict("x")):
        assert runcerrors.as_process_setup_error(passthrough) is passthrough


def test_runc_failures_reach_the_shim_in_runcs_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """runc runs in a fork of the shim (in_child): its failure, a missing binary and a
    timeout come back as RuncError with their kind."""
    runc = Runc("runc", str(tmp_path / "root"), str(tmp_path / "log.json"))
    with pytest.raises(RuncError, match="does not exist") as caught:
        runc.run(["state", "nope"])
    assert caught.value.kind == proto.NOT_FOUND
    missing = Runc(str(tmp_path / "no-runc"), str(tmp_path / "root"), str(tmp_path / "log.json"))
    with pytest.raises(RuncError, match="runc state: .*No such file or directory"):
        missing.run(["state", "nope"])
    sleeper = tmp_path / "slow-runc"
    sleeper.write_text("#!/bin/sh\nexec sleep 30\n")
    sleeper.chmod(0o755)
    monkeypatch.setattr(shim_runc, "RUNC_TIMEOUT", 0.5)
    with pytest.raises(RuncError, match="runc state timed out"):
        Runc(str(sleeper), str(tmp_path), str(tmp_path / "log.json")).run(["state", "x"])
