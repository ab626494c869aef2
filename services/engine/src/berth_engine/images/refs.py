"""Image reference rules the engine checks itself: a tag's target (berth_common.reference, with
Docker's wording), and the glob matching of the `reference` filter."""

from __future__ import annotations

import re

from berth_common.reference import InvalidReference, parse_repo_tag
from berth_contracts.errors import InvalidParameter


def validate_repo_tag(repo: str, tag: str) -> tuple[str, str]:
    """The (repository, tag) to apply; InvalidParameter with the daemon's words otherwise."""
    try:
        ref = parse_repo_tag(repo, tag)
    except InvalidReference as exc:
        raise InvalidParameter(str(exc)) from None
    return ref.familiar_name(), ref.tag


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
