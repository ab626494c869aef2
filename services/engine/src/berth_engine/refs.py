"""Image reference rules the engine checks itself: Docker's wording for bad names and tags, and
the glob matching of the `reference` filter."""

from __future__ import annotations

import re

from berth_contracts.errors import InvalidParameter

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_NAME = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


def _split_domain(name: str) -> tuple[str, str]:
    """distribution/reference splitDockerDomain, enough to find the path part."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):  # fmt: skip
        return "docker.io", name if sep else f"library/{name}"
    return first, rest


def validate_repo_tag(repo: str, tag: str) -> tuple[str, str]:
    """The (repository, tag) to apply; InvalidParameter with the daemon's words otherwise."""
    if not repo:
        raise InvalidParameter("invalid reference format")
    if _HEX64.match(repo):
        raise InvalidParameter(
            f"invalid repository name ({repo}), cannot specify 64-byte hexadecimal strings"
        )
    if "@" in repo:
        raise InvalidParameter("refusing to create a tag with a digest reference")
    last = repo.rsplit("/", 1)[-1]
    if ":" in last and not tag:
        repo, tag = repo[: len(repo) - len(last)] + last.split(":", 1)[0], last.split(":", 1)[1]
    _domain, remainder = _split_domain(repo)
    if remainder.lower() != remainder:
        raise InvalidParameter(
            f"invalid reference format: repository name ({remainder}) must be lowercase"
        )
    if not _NAME.match(repo):
        raise InvalidParameter("invalid reference format")
    tag = tag or "latest"
    if not _TAG.match(tag):
        raise InvalidParameter("invalid reference format")
    return repo, tag


def _glob(pattern: str) -> re.Pattern[str]:
    """Go's path.Match: `*` and `?` do not cross "/"."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(ch))
    return re.compile("^" + "".join(out) + "$")


def reference_matches(pattern: str, repo_tag: str) -> bool:
    """reference.FamiliarMatch: the pattern matches the familiar ref or its name alone."""
    rx = _glob(pattern)
    if rx.match(repo_tag):
        return True
    name = repo_tag.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return bool(rx.match(name))
