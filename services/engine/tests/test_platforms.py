import pytest
from berth_contracts.docker import ContainerConfig
from berth_contracts.errors import InvalidParameter, NotFound
from berth_contracts.lifecycle import ImageRecord
from berth_engine.containers.platforms import check_platform

IMG = ImageRecord(id="sha256:" + "0" * 64, repo_tags=["busybox:latest"], repo_digests=[],
                  created="2023-11-14T22:13:20Z", size=1, config=ContainerConfig(), diff_ids=[])  # fmt: skip


def test_check() -> None:
    for ok in ("", "linux", "linux/amd64", "Linux/x86_64"):
        check_platform("busybox", ok, IMG)
    with pytest.raises(InvalidParameter):
        check_platform("busybox", "linux//", IMG)
    with pytest.raises(NotFound) as err:
        check_platform("busybox", "linux/arm64", IMG)
    assert err.value.message == (
        "image with reference busybox was found but does not match the specified platform: "
        "wanted linux/arm64, actual: linux/amd64"
    )
