"""distribution/reference's parse, as dockerd answers it (the services' own tests check it
through their InvalidParameter adapters)."""

from __future__ import annotations

import pytest
from berth_common.reference import (
    InvalidReference,
    parse_normalized_named,
    parse_repo_tag,
    split_domain,
)


def test_split_domain() -> None:
    assert split_domain("busybox") == ("docker.io", "library/busybox")
    assert split_domain("index.docker.io/foo/bar") == ("docker.io", "foo/bar")
    assert split_domain("localhost/x") == ("localhost", "x")
    assert split_domain("127.0.0.1:5000/a/b") == ("127.0.0.1:5000", "a/b")
    assert split_domain("Foo/bar") == ("Foo", "bar")  # an upper-case first part is a host
    assert split_domain("foo/bar") == ("docker.io", "foo/bar")


@pytest.mark.parametrize("text", ["busybox\n", "busybox:lätest", "bäd", "busybox:1\n", "x@sha256:" + "a" * 64 + "\n"])
def test_no_newline_no_unicode(text: str) -> None:
    with pytest.raises(InvalidReference, match="^invalid reference format$"):
        parse_normalized_named(text)


def test_repo_tag_words() -> None:
    assert str(parse_repo_tag("a:1", "")) == "docker.io/library/a:1"
    assert str(parse_repo_tag("a:1", "2")) == "docker.io/library/a:2"
    with pytest.raises(InvalidReference, match="^invalid tag format$"):
        parse_repo_tag("a", "lätest")
    with pytest.raises(InvalidReference, match="^refusing to create a tag with a digest reference$"):
        parse_repo_tag("a@sha256:" + "b" * 64, "")
