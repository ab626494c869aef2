"""Image references parsed and normalized as distribution/reference's ParseNormalizedNamed does,
over the grammar of `refgrammar` (whole-string, ASCII matches: `busybox\\n` and `lätest` are
refused, as dockerd refuses them).

`busybox` → docker.io/library/busybox (tag "latest" added where a tag is needed); the familiar
form drops `docker.io/` and `library/` again. A domain is the first component only when it has a
dot or a colon, is `localhost`, or has an upper-case letter (splitDockerDomain).

Errors are `InvalidReference` with dockerd's words; each service raises them as its own
Docker-shaped error (InvalidParameter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from berth_common import refgrammar

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = refgrammar.NAME_TOTAL_LENGTH_MAX

# Anchored at both ends for `.match` (`\Z`, not `$`, which also matches before a final newline).
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}\Z")
HEX64_RE = re.compile(r"[a-f0-9]{64}\Z")
_REF_RE = re.compile(
    rf"(?P<name>[^@]+?)(?::(?P<tag>{refgrammar.TAG_RE.pattern}))?"
    r"(?:@(?P<digest>[A-Za-z0-9_+.-]+:[A-Fa-f0-9]+))?"
)


class InvalidReference(ValueError):
    """A reference dockerd refuses; the message is dockerd's."""


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


def split_domain(name: str) -> tuple[str, str]:
    """splitDockerDomain: (domain, remainder), Docker Hub's aliases and `library/` applied."""
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
    """ParseNormalizedNamed: InvalidReference with Docker's words on a bad reference."""
    if HEX64_RE.match(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    m = _REF_RE.fullmatch(text)
    if not m or not text:
        raise InvalidReference("invalid reference format")
    raw_name, tag, digest = m.group("name"), m.group("tag") or "", m.group("digest") or ""
    domain, path = split_domain(raw_name)
    if path.lower() != path:
        raise InvalidReference(f"invalid reference format: repository name ({path}) must be lowercase")
    # The grammar's own regexps, not is_domain: dockerd checks no port range when it parses.
    if not refgrammar.REMOTE_NAME_RE.fullmatch(path) or not refgrammar.DOMAIN_RE.fullmatch(domain):
        raise InvalidReference("invalid reference format")
    name = f"{domain}/{path}"
    if len(name) > NAME_TOTAL_MAX:
        raise InvalidReference(f"invalid reference format: repository name must not be more than {NAME_TOTAL_MAX} characters")
    if digest and not DIGEST_RE.match(digest):
        raise InvalidReference("invalid reference format")
    return Reference(name, tag, digest)


def parse_repo_tag(repo: str, tag: str) -> Reference:
    """The target of a tag or commit: repo (maybe with its own tag) plus tag (default latest)."""
    ref = parse_normalized_named(repo)
    if ref.digest:
        raise InvalidReference("refusing to create a tag with a digest reference")
    if tag:
        # A tag given separately wins over one in repo, as reference.WithTag does in dockerd.
        if not refgrammar.is_tag(tag):
            raise InvalidReference("invalid tag format")
        return Reference(ref.name, tag)
    return ref.with_default_tag()


def familiar(full: str) -> str:
    """Familiar form of a stored full reference string."""
    return parse_normalized_named(full).familiar()
