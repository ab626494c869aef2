"""Image references, parsed and normalized the way Docker's distribution/reference does it.

`busybox` → docker.io/library/busybox (tag "latest" added where a tag is needed); the familiar
form drops `docker.io/` and `library/` again. A domain is the first component only when it has a
dot or a colon or is `localhost`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from berth_contracts.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"

TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
HEX64_RE = re.compile(r"^[a-f0-9]{64}$")
_PATH_RE = re.compile(rf"^{_PATH}$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_REF_RE = re.compile(r"^(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z0-9_+.-]+:[A-Fa-f0-9]+))?$")

NAME_TOTAL_MAX = 255


@dataclass(frozen=True)
class Reference:
    """A normalized named reference: name is fully qualified (docker.io/library/busybox)."""

    name: str
    tag: str = ""
    digest: str = ""

    @property
    def domain(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def path(self) -> str:
        return self.name.split("/", 1)[1]

    def with_default_tag(self) -> Reference:
        """Docker's TagNameOnly: add "latest" when there is neither tag nor digest."""
        if not self.tag and not self.digest:
            return Reference(self.name, DEFAULT_TAG, "")
        return self

    def __str__(self) -> str:
        """The full form, the key names are stored under."""
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def familiar_name(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_PREFIX) and path.count("/") == 1:
                return path[len(OFFICIAL_PREFIX) :]
            return path
        return self.name

    def familiar(self) -> str:
        """busybox:latest, localhost:5000/x:1, busybox@sha256:..."""
        return self.familiar_name() + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else ""
        )


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    if i == -1 or (
        not any(c in name[:i] for c in ".:") and name[:i] != "localhost" and name[:i].lower() == name[:i]
    ):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = name[:i], name[i + 1 :]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def parse_normalized_named(text: str) -> Reference:
    """ParseNormalizedNamed: raise InvalidParameter with Docker's words on a bad reference."""
    if HEX64_RE.match(text):
        raise InvalidParameter(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    m = _REF_RE.match(text)
    if not m or not text:
        raise InvalidParameter("invalid reference format")
    raw_name, tag, digest = m.group("name"), m.group("tag") or "", m.group("digest") or ""
    domain, path = _split_domain(raw_name)
    if path.lower() != path:
        raise InvalidParameter(f"invalid reference format: repository name ({path}) must be lowercase")
    if not _PATH_RE.match(path) or not _DOMAIN_RE.match(domain):
        raise InvalidParameter("invalid reference format")
    name = f"{domain}/{path}"
    if len(name) > NAME_TOTAL_MAX:
        raise InvalidParameter(f"invalid reference format: repository name must not be more than {NAME_TOTAL_MAX} characters")
    if digest and not DIGEST_RE.match(digest):
        raise InvalidParameter("invalid reference format")
    return Reference(name, tag, digest)


def parse_repo_tag(repo: str, tag: str) -> Reference:
    """The target of a tag operation: repo (maybe with its own tag) plus tag (default latest)."""
    ref = parse_normalized_named(repo)
    if ref.digest:
        raise InvalidParameter("refusing to create a tag with a digest reference")
    if tag:
        # A tag given separately wins over one in repo, as reference.WithTag does in dockerd.
        if not TAG_RE.match(tag):
            raise InvalidParameter(f"invalid tag format: {tag}")
        return Reference(ref.name, tag)
    return ref.with_default_tag()


def familiar(full: str) -> str:
    """Familiar form of a stored full reference string."""
    return parse_normalized_named(full).familiar()
