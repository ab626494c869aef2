"""--cache-from's rule for which source images can hold a step's result (moby's isValidParent)."""

from __future__ import annotations

from berth_lifecycle.buildcache import _valid_parent
from berth_lifecycle.metadata import ImageRow

BASE = [{"created_by": "import"}]
STEP = {"created_by": "/bin/sh -c echo one > /one"}


def _row(diff_ids: list[str]) -> ImageRow:
    return ImageRow(
        id="sha256:p", config=b"{}", diff_ids=diff_ids, chain_ids=[], layer_blobs=[], size=0,
        added="", last_tag_time="",
    )  # fmt: skip


def test_any_source_with_history_can_follow_no_parent() -> None:
    assert _valid_parent([STEP], ["sha256:a"], [], None)
    assert not _valid_parent([], [], [], None)


def test_the_source_must_start_with_the_parents_history_and_layers() -> None:
    parent = _row(["sha256:a"])
    assert _valid_parent([*BASE, STEP], ["sha256:a", "sha256:b"], BASE, parent)
    assert not _valid_parent([{"created_by": "other"}, STEP], ["sha256:a", "sha256:b"], BASE, parent)
    assert not _valid_parent([*BASE, STEP], ["sha256:x", "sha256:b"], BASE, parent)


def test_the_source_must_be_longer_than_the_parent() -> None:
    parent = _row(["sha256:a"])
    assert not _valid_parent(BASE, ["sha256:a"], BASE, parent)
    assert not _valid_parent([*BASE, STEP], [], BASE, parent)
