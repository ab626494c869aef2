"""The one validation of ids and names that services take from the wire.

containerd checks every id it is given with `identifiers.Validate` before it is used anywhere
(`[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76 characters), so no id can be `..`, hold a `/`,
or start with `-`; Docker's container, volume and network names follow
`[a-zA-Z0-9][a-zA-Z0-9_.-]+` and container ids are 64 hex digits.

Contract Structs annotate the fields that a handler uses as ids with the `Identifier` type:
msgspec then refuses a bad id while decoding, before any handler sees it, and the service kit
answers that refusal as `InvalidParameter` with `describe_invalid`'s words. Code that joins an id
into a path also calls `validate_identifier` itself, so no path is built from an unchecked id.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from berth_contracts.errors import InvalidParameter

IDENTIFIER_MAX_LENGTH = 76
IDENTIFIER_PATTERN = r"^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$"
CONTAINER_ID_PATTERN = r"^[0-9a-f]{64}$"
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
NAME_PATTERN = rf"^{NAME_CHARS}+$"

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_CONTAINER_ID = re.compile(CONTAINER_ID_PATTERN)
_NAME = re.compile(NAME_PATTERN)

# An id a handler may use as a path part, a file name or a key (containerd's rule).
Identifier = Annotated[
    str, msgspec.Meta(pattern=IDENTIFIER_PATTERN, max_length=IDENTIFIER_MAX_LENGTH)
]
# A Docker name (container, volume, network) a handler may use as a path or file name part.
Name = Annotated[str, msgspec.Meta(pattern=rf"^{NAME_CHARS}*$", max_length=255)]

# A NATS subject a service publishes to (a reply stream): tokens, no wildcards, no spaces.
_SUBJECT = r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*"
Subject = Annotated[str, msgspec.Meta(pattern=rf"^{_SUBJECT}$", max_length=255)]


def validate_identifier(value: str, what: str = "identifier") -> str:
    """containerd's `identifiers.Validate`, with its words; returns the value for chaining."""
    if not value:
        raise InvalidParameter(f"invalid {what}: identifier must not be empty")
    if len(value) > IDENTIFIER_MAX_LENGTH:
        raise InvalidParameter(
            f"invalid {what}: identifier {value[:IDENTIFIER_MAX_LENGTH]!r}... greater than "
            f"maximum length ({IDENTIFIER_MAX_LENGTH} characters)"
        )
    if not _IDENTIFIER.match(value):
        raise InvalidParameter(
            f"invalid {what}: identifier {_quote(value)} must match {IDENTIFIER_PATTERN[1:-1]}"
        )
    return value


def is_identifier(value: str) -> bool:
    return len(value) <= IDENTIFIER_MAX_LENGTH and _IDENTIFIER.match(value) is not None


def validate_container_id(value: str) -> str:
    """A full container id: 64 lower-case hex digits, as dockerd generates them."""
    if not _CONTAINER_ID.match(value):
        raise InvalidParameter(f"invalid container id {_quote(value)}: must be 64 hex digits")
    return value


def is_name(value: str) -> bool:
    """Docker's rule for container, volume and network names (`daemon/names`)."""
    return _NAME.match(value) is not None


def describe_invalid(exc: msgspec.ValidationError, raw: bytes) -> str:
    """Words for a request msgspec refused: the field, the value when it is a string, the rule.

    msgspec names the field (`... - at `$.container_id``) but not the value; the value is taken
    from the raw message so the caller sees what was wrong, as dockerd's messages quote it.
    """
    text = str(exc)
    rule, _, where = text.rpartition(" - at `")
    where = where.rstrip("`")
    if not rule:
        return f"invalid request: {text}"
    field = where.removeprefix("$.")
    value = _raw_field(raw, field)
    if value == "":
        return f"invalid {field}: identifier must not be empty"
    if isinstance(value, str) and "regex" in rule:
        return f"invalid {field}: identifier {_quote(value)} must match {IDENTIFIER_PATTERN[1:-1]}"
    if isinstance(value, str) and "length" in rule:
        return (
            f"invalid {field}: identifier {_quote(value[:IDENTIFIER_MAX_LENGTH])}... greater than "
            f"maximum length ({IDENTIFIER_MAX_LENGTH} characters)"
        )
    return f"invalid {field}: {rule}"


def _raw_field(raw: bytes, field: str) -> Any:
    if not field or "." in field or "[" in field:
        return None
    try:
        data = msgspec.msgpack.decode(raw)
    except msgspec.DecodeError:
        return None
    return data.get(field) if isinstance(data, dict) else None


def _quote(value: str) -> str:
    # Go's %q: quoted, control characters escaped (a log line stays one line).
    return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
