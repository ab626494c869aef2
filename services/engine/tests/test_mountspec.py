"""moby's volume-spec parsing: binds, mounts, tmpfs, anonymous volumes, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from berth_contracts.docker import ContainerConfig, HostConfig
from berth_contracts.errors import InvalidParameter
from berth_engine.containers.mountspec import mount_points, oci_mounts, parse_all, parse_bind


def test_bind_and_named_volume() -> None:
    bind = parse_bind("/host/dir/:/ctr:ro")
    assert (bind.type, bind.source, bind.destination, bind.rw) == (
        "bind",
        "/host/dir",
        "/ctr",
        False,
    )
    assert bind.propagation == "rprivate" and bind.mode == "ro"
    vol = parse_bind("data:/var/lib/x")
    assert (vol.type, vol.name, vol.mode, vol.copy_up) == ("volume", "data", "z", True)
    assert parse_bind("data:/x:nocopy").copy_up is False


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("/a", "invalid volume specification"),
        ("/a:rel", "mount path must be absolute"),
        ("/a:/b:bogus", "invalid mode: bogus"),
        ("/a:/", "destination can't be '/'"),
    ],
)
def test_bad_binds(spec: str, words: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_bind(spec)
    assert words in err.value.message


def test_parse_all_duplicates_anonymous_and_tmpfs(tmp_path: Path) -> None:
    hc = HostConfig(
        binds=[f"{tmp_path}:/data"],
        mounts=[
            {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o700}}
        ],
        tmpfs={"/run": "size=1m"},
    )
    entries = parse_all(hc, ContainerConfig(volumes={"/data": {}, "/cache": {}}))
    by_dest = {e.destination: e for e in entries}
    assert by_dest["/cache"].type == "volume" and by_dest["/cache"].name == ""
    assert by_dest["/data"].type == "bind"  # the bind covers the image's VOLUME
    assert "size=1024" in by_dest["/t"].tmpfs_options and "mode=700" in by_dest["/t"].tmpfs_options
    # --tmpfs mounts are not listed in inspect's Mounts, as in moby.
    assert {m.destination for m in mount_points(entries)} == {"/data", "/cache", "/t"}
    run = next(m for m in oci_mounts(entries) if m.target == "/run")
    assert run.type == "tmpfs" and run.options[:3] == ["noexec", "nosuid", "nodev"]
    with pytest.raises(InvalidParameter) as err:
        parse_all(HostConfig(binds=["/a:/x", "v:/x"]), ContainerConfig())
    assert err.value.message == "Duplicate mount point: /x"


def test_missing_bind_source_in_mounts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_all(
            HostConfig(mounts=[{"Type": "bind", "Source": str(tmp_path / "no"), "Target": "/x"}]),
            ContainerConfig(),
        )
    assert "bind source path does not exist" in err.value.message
