"""docker pull's reference and platform parsing (no registry needed)."""

from __future__ import annotations

import pytest
from berth_contracts.engine import ImagePull
from berth_contracts.errors import InvalidParameter
from berth_lifecycle.pull import pull_reference
from berth_lifecycle.registry import Platform

DIGEST = "sha256:" + "a" * 64


def test_pull_reference() -> None:
    assert str(pull_reference(ImagePull(ref="busybox"))) == "docker.io/library/busybox:latest"
    assert str(pull_reference(ImagePull(ref="busybox", tag="1"))) == "docker.io/library/busybox:1"
    ref = pull_reference(ImagePull(ref="127.0.0.1:5000/library/busybox", tag=DIGEST))
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("127.0.0.1:5000", "library/busybox", "", DIGEST)
    assert pull_reference(ImagePull(ref=f"busybox@{DIGEST}")).digest == DIGEST
    with pytest.raises(InvalidParameter):
        pull_reference(ImagePull(ref="Busybox"))
    with pytest.raises(InvalidParameter):
        pull_reference(ImagePull(ref="busybox", tag="a:b"))


def test_platform() -> None:
    assert Platform.parse("") == Platform()
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert Platform.parse("arm64") == Platform("linux", "arm64")
    assert Platform.parse("linux/amd64").matches({"os": "linux", "architecture": "amd64"})
    assert not Platform.parse("linux/arm64/v8").matches({"os": "linux", "architecture": "arm64", "variant": "v7"})
    with pytest.raises(InvalidParameter):
        Platform.parse("linux//")
