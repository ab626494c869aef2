"""autolock: the unlock key's text, and a manager's store key wrapped, locked, unlocked."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from berth_contracts.errors import InvalidParameter, Unauthorized
from berth_kit import storekey
from berth_kit.storekey import forget_unlocked, key_path, unlocked_path, usable_key
from berth_orchestrator.autolock import StoreKey, new_unlock_key, parse_unlock_key, unlock_key_for


@pytest.fixture
def bus_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(storekey, "MEMORY_DIR", tmp_path / "shm")  # the test's own "memory"
    (tmp_path / "shm").mkdir()
    return tmp_path / "nats"


def test_unlock_keys_are_swarmkits_text() -> None:
    key = new_unlock_key()
    assert key.startswith("SWMKEY-1-") and "=" not in key and len(key) == 9 + 43
    assert len(parse_unlock_key(key)) == 32 and new_unlock_key() != key
    for bad in ("", "SWMKEY-2-abc", "SWMKEY-1-not base64!", key + "="):
        with pytest.raises(InvalidParameter, match="^invalid key string$"):
            parse_unlock_key(bad)


def test_the_unlock_key_follows_the_spec() -> None:
    on = {"EncryptionConfig": {"AutoLockManagers": True}}
    first = unlock_key_for(on, "", rotate=False)
    assert first and unlock_key_for(on, first, rotate=False) == first
    assert unlock_key_for(on, first, rotate=True) not in ("", first)
    assert unlock_key_for({"EncryptionConfig": {"AutoLockManagers": False}}, first, rotate=True) == ""


def test_a_store_key_wrapped_by_the_unlock_key_is_locked_after_a_restart(bus_dir: Path) -> None:
    keys = StoreKey(bus_dir)
    key_id = keys.ensure()
    assert keys.ensure() == key_id  # made once
    assert stat.S_IMODE(key_path(bus_dir).stat().st_mode) == 0o600
    plain = usable_key(bus_dir, key_id)
    assert plain and not keys.locked(key_id)
    unlock = new_unlock_key()
    assert keys.follow(key_id, unlock)
    on_disk = json.loads(key_path(bus_dir).read_text())
    assert "key" not in on_disk and plain not in key_path(bus_dir).read_text()
    assert usable_key(bus_dir, key_id) == plain and not keys.locked(key_id)  # in memory meanwhile
    forget_unlocked(bus_dir)  # `berth up`
    assert keys.locked(key_id) and usable_key(bus_dir, key_id) is None
    assert not keys.follow(key_id, unlock)  # a locked manager cannot follow
    with pytest.raises(Unauthorized, match="invalid key provided"):
        keys.unlock(key_id, new_unlock_key())
    with pytest.raises(InvalidParameter):
        keys.unlock(key_id, "SWMKEY-1-short")
    keys.unlock(key_id, unlock)
    assert usable_key(bus_dir, key_id) == plain and not keys.locked(key_id)
    assert stat.S_IMODE(unlocked_path(bus_dir).stat().st_mode) == 0o600


def test_rotating_and_turning_autolock_off_rewrap_the_same_store_key(bus_dir: Path) -> None:
    keys = StoreKey(bus_dir)
    key_id = keys.ensure()
    plain = usable_key(bus_dir, key_id)
    old, new = new_unlock_key(), new_unlock_key()
    keys.follow(key_id, old)
    keys.follow(key_id, new)
    forget_unlocked(bus_dir)
    with pytest.raises(Unauthorized):
        keys.unlock(key_id, old)
    keys.unlock(key_id, new)
    assert keys.follow(key_id, "")  # autolock off: the key in the clear again
    forget_unlocked(bus_dir)
    assert not keys.locked(key_id) and usable_key(bus_dir, key_id) == plain
    keys.remove()
    assert not key_path(bus_dir).exists()
