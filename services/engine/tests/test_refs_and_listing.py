from collections.abc import Callable

import pytest
from berth_contracts.docker import CreateRequest
from berth_contracts.errors import InvalidParameter
from berth_engine.containers import listing
from berth_engine.containers.records import Record
from berth_engine.images.refs import reference_matches, validate_repo_tag

S = 1_000_000_000


def test_repo_tag_validation() -> None:
    assert validate_repo_tag("myimage", "") == ("myimage", "latest")
    assert validate_repo_tag("127.0.0.1:5000/team/app", "v1.2") == (
        "127.0.0.1:5000/team/app",
        "v1.2",
    )
    assert validate_repo_tag("app:dev", "") == ("app", "dev")
    with pytest.raises(InvalidParameter) as err:
        validate_repo_tag("MyImage", "x")
    assert (
        err.value.message
        == "invalid reference format: repository name (library/MyImage) must be lowercase"
    )
    with pytest.raises(InvalidParameter) as err:
        validate_repo_tag("ok", "bad tag")
    assert err.value.message == "invalid tag format"  # dockerd 20.10's words for a separate tag
    with pytest.raises(InvalidParameter):
        validate_repo_tag("a" * 64, "")
    with pytest.raises(InvalidParameter):
        validate_repo_tag("", "")


@pytest.mark.parametrize(
    ("repo", "tag", "message"),
    [  # dockerd 20.10's answers to POST /images/{name}/tag?repo=...&tag=...
        ("busybox\n", "", "invalid reference format"),
        ("busybox:lätest", "", "invalid reference format"),
        ("bäd", "x", "invalid reference format"),
        ("busybox", "lätest", "invalid tag format"),
        ("busybox", "x\n", "invalid tag format"),
    ],
)
def test_repo_tag_refused_as_dockerd_refuses(repo: str, tag: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        validate_repo_tag(repo, tag)
    assert err.value.message == message


def test_reference_filter_glob() -> None:
    assert reference_matches("busybox", "busybox:latest")
    assert reference_matches("busybox:latest", "busybox:latest")
    assert reference_matches("busy*", "busybox:1.36")
    assert not reference_matches("busy*", "library/busybox:1")
    assert reference_matches("*:1.36", "busybox:1.36")
    assert not reference_matches("alpine", "busybox:latest")
    assert reference_matches("localhost:5000/app", "localhost:5000/app:v1")


def _records(make_record: Callable[..., Record]) -> list[Record]:
    base = 1_700_000_000 * S
    a = make_record(
        "alpha",
        CreateRequest(image="busybox", cmd=["true"], labels={"app": "web", "tier": "front"}),
        cid="aaa" + "0" * 61,
        created_ns=base,
    )
    b = make_record(
        "beta",
        CreateRequest(image="busybox:1", cmd=["true"], labels={"app": "db"}),
        cid="bbb" + "0" * 61,
        created_ns=base + S,
    )
    c = make_record("gamma", cid="ccc" + "0" * 61, created_ns=base + 2 * S)
    b.state.status = "running"
    c.state.status = "exited"
    c.state.exit_code = 3
    return [a, b, c]  # fmt: skip


def _names(recs: list[Record]) -> list[str]:
    return [r.name for r in recs]


def test_list_filters(make_record: Callable[..., Record]) -> None:
    recs = _records(make_record)

    def sel(all_: bool = True, limit: int = -1, **filters: list[str]) -> list[str]:
        return _names(listing.select(recs, all_=all_, limit=limit, filters=filters))

    assert sel() == ["gamma", "beta", "alpha"]  # newest first
    assert sel(all_=False) == ["beta"]
    assert sel(limit=1, all_=False) == ["gamma"]
    assert sel(id=["aa"]) == ["alpha"]
    assert sel(name=["amm"]) == ["gamma"]
    assert sel(name=["/beta"]) == ["beta"]
    assert sel(label=["app"]) == ["beta", "alpha"]
    assert sel(label=["app=web"]) == ["alpha"]
    assert sel(label=["app=web", "tier=back"]) == []
    assert sel(all_=False, status=["exited"]) == ["gamma"]
    assert sel(status=["created", "running"]) == ["beta", "alpha"]
    assert sel(exited=["3"]) == ["gamma"]
    assert sel(ancestor=["busybox:1"]) == ["beta"]
    by_name = {r.name: r for r in recs}
    assert _names(listing.select(recs, all_=True, limit=-1, filters={"before": ["gamma"]},
                                 lookup=by_name.__getitem__)) == ["beta", "alpha"]  # fmt: skip
    assert _names(listing.select(recs, all_=True, limit=-1, filters={"since": ["alpha"]},
                                 lookup=by_name.__getitem__)) == ["gamma", "beta"]  # fmt: skip


def test_list_filter_errors(make_record: Callable[..., Record]) -> None:
    recs = _records(make_record)
    with pytest.raises(InvalidParameter) as err:
        listing.select(recs, all_=True, limit=-1, filters={"bogus": ["1"]})
    assert err.value.message == "invalid filter 'bogus'"
    with pytest.raises(InvalidParameter):
        listing.select(recs, all_=True, limit=-1, filters={"status": ["sleeping"]})
