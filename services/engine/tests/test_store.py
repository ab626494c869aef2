from collections.abc import Callable
from pathlib import Path

import pytest
from berth_contracts.errors import Conflict, InvalidParameter, NotFound
from berth_engine.containers.records import Record
from berth_engine.containers.store import RecordStore

pytestmark = pytest.mark.anyio


async def test_insert_lookup_and_reopen(tmp_path: Path, make_record: Callable[..., Record]) -> None:
    db = tmp_path / "engine" / "engine.db"
    store = RecordStore(db)
    rec = make_record("web")
    await store.insert(rec)
    assert store.lookup(rec.id) is rec
    assert store.lookup("web") is rec
    assert store.lookup("/web") is rec
    assert store.lookup(rec.id[:5]) is rec
    rec.state.status = "running"
    rec.state.pid = 42
    await store.save(rec)
    store.close()

    again = RecordStore(db)
    got = again.lookup("web")
    assert got == rec
    assert got.state.pid == 42
    assert got.request == rec.request
    again.close()


async def test_lookup_order_prefers_name_over_prefix(
    tmp_path: Path, make_record: Callable[..., Record]
) -> None:
    store = RecordStore(tmp_path / "e.db")
    a = make_record("first", cid="abc" + "0" * 61)
    # A container *named* like the other's id prefix: the exact name wins over the prefix.
    b = make_record("abc", cid="def" + "0" * 61)
    await store.insert(a)
    await store.insert(b)
    assert store.lookup("abc") is b
    assert store.lookup("ab") is a
    assert store.lookup(a.id) is a


async def test_ambiguous_prefix_and_missing(
    tmp_path: Path, make_record: Callable[..., Record]
) -> None:
    store = RecordStore(tmp_path / "e.db")
    await store.insert(make_record("one", cid="aa1" + "0" * 61))
    await store.insert(make_record("two", cid="aa2" + "0" * 61))
    with pytest.raises(InvalidParameter) as err:
        store.lookup("aa")
    assert err.value.message == "multiple IDs found with provided prefix: aa"
    with pytest.raises(NotFound) as missing:
        store.lookup("nothing")
    assert missing.value.message == "No such container: nothing"
    with pytest.raises(NotFound):
        store.lookup("")


async def test_name_conflicts(tmp_path: Path, make_record: Callable[..., Record]) -> None:
    store = RecordStore(tmp_path / "e.db")
    rec = make_record("web")
    await store.insert(rec)
    with pytest.raises(Conflict) as err:
        store.reserve_name("web", "x" * 64)
    assert err.value.message == (
        f'Conflict. The container name "/web" is already in use by container "{rec.id}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )
    store.reserve_name("api", "y" * 64)
    assert store.name_taken("api")
    with pytest.raises(Conflict):
        store.reserve_name("api", "z" * 64)
    store.release_name("api")
    assert not store.name_taken("api")
    with pytest.raises(Conflict):
        await store.insert(make_record("web"))


async def test_delete_frees_name_and_survives_reopen(
    tmp_path: Path, make_record: Callable[..., Record]
) -> None:
    db = tmp_path / "e.db"
    store = RecordStore(db)
    rec = make_record("web")
    await store.insert(rec)
    await store.delete(rec.id)
    assert not store.name_taken("web")
    with pytest.raises(NotFound):
        store.lookup(rec.id)
    # Saving a removed record must not bring it back.
    await store.save(rec)
    store.close()
    assert RecordStore(db).all() == []


async def test_rename(tmp_path: Path, make_record: Callable[..., Record]) -> None:
    db = tmp_path / "e.db"
    store = RecordStore(db)
    a, b = make_record("a1"), make_record("b1")
    await store.insert(a)
    await store.insert(b)
    await store.rename(a, "renamed")
    assert store.lookup("renamed") is a and not store.name_taken("a1")
    with pytest.raises(Conflict):
        await store.rename(a, "b1")
    assert a.name == "renamed"
    store.close()
    assert RecordStore(db).lookup("renamed").id == a.id
