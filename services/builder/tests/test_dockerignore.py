""".dockerignore reading and matching with moby's rules."""

from __future__ import annotations

import pytest
from berth_builder.dockerignore import (
    PatternError,
    PatternMatcher,
    excluded,
    go_clean,
    read_patterns,
)


def test_read_patterns_cleans_anchors_and_skips_comments() -> None:
    text = "\ufeff# comment\n\n  *.key  \n/abs/../x\n./y/\n  !  keep.md \n!/z\nsub//dir/.\n"
    assert read_patterns(text) == ["*.key", "x", "y", "!keep.md", "!z", "sub/dir"]


@pytest.mark.parametrize(
    ("patterns", "path", "want"),
    [
        (["*.key"], "a.key", True),
        (["*.key"], "src/a.key", False),  # anchored at the context root
        (["**/*.key"], "src/a.key", True),
        (["**/*.key"], "a.key", True),
        (["docs"], "docs/x/y.md", True),  # a matched directory excludes what is under it
        (["docs"], "docsx", False),
        (["dir/*"], "dir/a/b", True),
        (["a/**"], "a/b/c", True),
        (["**"], "anything/at/all", True),
        (["?.txt"], "ab.txt", False),
        (["[a-c].txt"], "b.txt", True),
        (["[^a-c].txt"], "d.txt", True),
        (["\\*.txt"], "*.txt", True),
        (["\\*.txt"], "a.txt", False),
        (["docs", "!docs/keep.md"], "docs/keep.md", False),
        (["docs", "!docs/keep.md"], "docs/other.md", True),
        (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
        (["*.md", "!README*.md", "README-secret.md"], "README.md", False),
        (["a.$x"], "a.$x", True),  # `.` and `$` are literal
        ([], "x", False),
    ],
)
def test_matches(patterns: list[str], path: str, want: bool) -> None:
    assert excluded(path, patterns) is want


def test_the_context_root_is_never_excluded() -> None:
    assert excluded(".", ["*"]) is False
    assert excluded("./a/../", ["*"]) is False


@pytest.mark.parametrize("bad", ["[", "a[b", "x\\", "[]a]"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(PatternError, match="syntax error in pattern"):
        PatternMatcher([bad])


def test_a_lone_exclamation_mark_is_refused() -> None:
    with pytest.raises(PatternError, match='illegal exclusion pattern: "!"'):
        PatternMatcher(["!"])


@pytest.mark.parametrize(
    ("path", "want"),
    [("", "."), ("a//b/./c/..", "a/b"), ("/../x", "/x"), ("../../x", "../../x"), ("a/../..", "..")],
)
def test_go_clean(path: str, want: str) -> None:
    assert go_clean(path) == want
