"""The image reference grammar of distribution/reference (regexp.go), stdlib only.

    name            := [domain '/'] remote-name
    domain          := host [':' port]            host: domain-name | '[' IPv6 ']'
    domain-name     := domain-component ('.' domain-component)*
    remote-name     := path-component ('/' path-component)*
    path-component  := [a-z0-9]+ (separator [a-z0-9]+)*     separator: '.' | '_' | '__' | '-'+
    tag             := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest          := algorithm ':' hex{32,}

Two refinements where the grammar is looser than what can be put in a URL: a port is 1-65535
and a bracketed IPv6 address must parse as one. Every check matches the whole string
(`fullmatch`, ASCII classes: Python's `$` and `\\w` would accept a trailing newline and
non-ASCII letters).
"""

from __future__ import annotations

import ipaddress
import re

NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"

REMOTE_NAME_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
DOMAIN_RE = re.compile(rf"(?P<host>{_DOMAIN_NAME}|{_IPV6})(?::(?P<port>[0-9]+))?")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
SHA256_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")


def is_domain(value: str) -> bool:
    """A registry host, optionally with a port: `registry.test`, `127.0.0.1:5000`, `[::1]:5000`."""
    m = DOMAIN_RE.fullmatch(value)
    if m is None or len(value) > NAME_TOTAL_LENGTH_MAX:
        return False
    port = m.group("port")
    if port is not None and not 0 < int(port) <= 65535:
        return False
    host = m.group("host")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
    return True


def is_remote_name(value: str) -> bool:
    """A repository path without its domain: `library/alpine`."""
    return len(value) <= NAME_TOTAL_LENGTH_MAX and REMOTE_NAME_RE.fullmatch(value) is not None


def is_tag(value: str) -> bool:
    return TAG_RE.fullmatch(value) is not None


def is_digest(value: str) -> bool:
    """Any well-formed digest (`algorithm:hex`), whatever the algorithm."""
    return len(value) <= 1024 and DIGEST_RE.fullmatch(value) is not None


def is_sha256_digest(value: str) -> bool:
    """The canonical digest: `sha256:` and 64 lower-case hex digits."""
    return SHA256_DIGEST_RE.fullmatch(value) is not None
