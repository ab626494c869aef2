"""Reference parsing and normalization, against Docker's rules."""

from __future__ import annotations

import pytest
from berth_contracts.errors import InvalidParameter
from berth_lifecycle.reference import parse_normalized_named, parse_repo_tag


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"),
        ("index.docker.io/foo/bar", "docker.io/foo/bar:latest", "foo/bar:latest"),
        ("foo/bar:v1", "docker.io/foo/bar:v1", "foo/bar:v1"),
        ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
        ("localhost:5000/x:1", "localhost:5000/x:1", "localhost:5000/x:1"),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest", "127.0.0.1:5000/a/b:latest"),
        ("quay.io/org/img:tag", "quay.io/org/img:tag", "quay.io/org/img:tag"),
    ],
)
def test_normalize(text: str, full: str, familiar: str) -> None:
    ref = parse_normalized_named(text).with_default_tag()
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_digest_reference() -> None:
    d = "sha256:" + "a" * 64
    ref = parse_normalized_named(f"busybox@{d}")
    assert str(ref.with_default_tag()) == f"docker.io/library/busybox@{d}"
    assert ref.familiar() == f"busybox@{d}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
        ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
        ("busybox:", "invalid reference format"),
        ("bad//name", "invalid reference format"),
        ("", "invalid reference format"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_normalized_named(text)


def test_repo_tag() -> None:
    assert str(parse_repo_tag("myrepo", "")) == "docker.io/library/myrepo:latest"
    assert str(parse_repo_tag("myrepo", "v2")) == "docker.io/library/myrepo:v2"
    assert str(parse_repo_tag("myrepo:v3", "")) == "docker.io/library/myrepo:v3"
    with pytest.raises(InvalidParameter):
        parse_repo_tag("myrepo", "bad tag")
    with pytest.raises(InvalidParameter, match="digest"):
        parse_repo_tag("x@sha256:" + "b" * 64, "")


# What dockerd 20.10 answers to POST /images/{name}/tag?repo=...&tag=... (and /images/create):
# whole-string, ASCII matches, so no trailing newline and no non-ASCII letter gets through.
DOCKERD_REFUSES = [
    ("busybox\n", "", "invalid reference format"),
    ("busybox:lätest", "", "invalid reference format"),
    ("bäd", "x", "invalid reference format"),
    ("busybox", "lätest", "invalid tag format"),
    ("busybox", "x\n", "invalid tag format"),
    ("ok", "bad tag", "invalid tag format"),
]


@pytest.mark.parametrize(("repo", "tag", "message"), DOCKERD_REFUSES)
def test_refused_as_dockerd_refuses(repo: str, tag: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_repo_tag(repo, tag)
    assert err.value.message == message
    if not tag:
        with pytest.raises(InvalidParameter):
            parse_normalized_named(repo)
