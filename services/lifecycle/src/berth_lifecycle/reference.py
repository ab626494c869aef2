"""Image references: berth_common.reference (distribution/reference's rules), its errors raised
as InvalidParameter (a 400 with dockerd's words)."""

from __future__ import annotations

from berth_common import reference as _reference
from berth_common.reference import DIGEST_RE, HEX64_RE, InvalidReference, Reference
from berth_contracts.errors import InvalidParameter

__all__ = ["DIGEST_RE", "HEX64_RE", "Reference", "familiar", "parse_normalized_named", "parse_repo_tag"]


def parse_normalized_named(text: str) -> Reference:
    try:
        return _reference.parse_normalized_named(text)
    except InvalidReference as exc:
        raise InvalidParameter(str(exc)) from None


def parse_repo_tag(repo: str, tag: str) -> Reference:
    try:
        return _reference.parse_repo_tag(repo, tag)
    except InvalidReference as exc:
        raise InvalidParameter(str(exc)) from None


def familiar(full: str) -> str:
    return parse_normalized_named(full).familiar()
