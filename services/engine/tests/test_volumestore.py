"""The local volume driver's directory layout, names and anonymous volumes."""

from __future__ import annotations

from pathlib import Path

import pytest
from berth_contracts.errors import InvalidParameter, NotFound
from berth_engine.volumes.store import ANONYMOUS_LABEL, VolumeStore


def test_create_get_list_remove(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path / "volumes")
    vol = store.create("data", {"a": "b"})
    assert vol.mountpoint == str(tmp_path / "volumes" / "data" / "_data")
    assert Path(vol.mountpoint).is_dir()
    assert store.create("data").labels == {"a": "b"}  # an existing name answers the volume
    anon = store.create("")
    assert len(anon.name) == 64 and ANONYMOUS_LABEL in (anon.labels or {})
    assert {v.name for v in store.all()} == {"data", anon.name}
    (Path(vol.mountpoint) / "f").write_bytes(b"12345")
    assert store.remove("data") == 5
    with pytest.raises(NotFound) as err:
        store.get("data")
    assert err.value.message == "get data: no such volume"
    with pytest.raises(InvalidParameter):
        store.create("bad/name")
