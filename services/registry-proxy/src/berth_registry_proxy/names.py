"""Which upstream a request is for: `?ns=<host>`, a host-like first path part, else Docker Hub."""

from __future__ import annotations

import re

from berth_registry_proxy.config import DOCKER_HUB
from berth_registry_proxy.errors import RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


def _host_like(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost"


def split_name(name: str, ns: str = "") -> tuple[str, str]:
    """(upstream host, repository name at that upstream)."""
    if ns:
        host, repo = ns, name
    else:
        first, sep, rest = name.partition("/")
        host, repo = (first, rest) if sep and _host_like(first) else (DOCKER_HUB, name)
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = DOCKER_HUB
    if not NAME_RE.match(repo) or len(repo) > 255:
        raise RegistryError("NAME_INVALID", f"invalid repository name {repo!r}")
    if host == DOCKER_HUB and "/" not in repo:
        repo = f"library/{repo}"
    return host, repo


def check_reference(ref: str) -> None:
    if not (TAG_RE.match(ref) or DIGEST_RE.match(ref)):
        if ref.startswith("sha256:") or ":" in ref:
            raise RegistryError("DIGEST_INVALID", f"invalid digest {ref!r}")
        raise RegistryError("MANIFEST_INVALID", f"invalid tag {ref!r}", 400)
