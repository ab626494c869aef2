"""Which upstream a request is for: `?ns=<host>`, a host-like first path part (splitDockerDomain,
berth_common.reference), else Docker Hub.

Every part of a request that ends up in an upstream URL or a cache path is checked here
against the reference grammar (berth_common.refgrammar) first: a host is a domain with an
optional port (no `/`, `..`, userinfo or path), a repository is path components, a
reference is a tag or a sha256 digest.
"""

from __future__ import annotations

from berth_common import refgrammar
from berth_common.reference import split_domain

from berth_registry_proxy.config import DOCKER_HUB, ProxyConfig
from berth_registry_proxy.errors import RegistryError

_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def split_name(name: str, ns: str = "", config: ProxyConfig | None = None) -> tuple[str, str]:
    """(upstream host, repository name at that upstream); NAME_INVALID (400) for anything the
    grammar refuses, DENIED (403) for a host `config` does not allow."""
    if ns:
        host, repo = ns, name
    else:
        host, repo = split_domain(name)  # Docker's rule: a host-like first part, else Docker Hub
    if not refgrammar.is_domain(host):
        raise RegistryError("NAME_INVALID", f"invalid registry host {host[:300]!r}")
    host = host.lower()  # host names are case-insensitive: one cache and one upstream for each
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    if host == DOCKER_HUB and "/" not in repo:
        repo = f"library/{repo}"
    if not refgrammar.is_remote_name(repo):
        raise RegistryError("NAME_INVALID", f"invalid repository name {repo[:300]!r}")
    if config is not None and not config.may_reach(host):
        raise RegistryError("DENIED", f"registry host {host!r} is not served by this proxy", 403)
    return host, repo


def check_reference(ref: str) -> None:
    """A tag, or a digest the cache can hold (sha256)."""
    if refgrammar.is_tag(ref) or refgrammar.is_sha256_digest(ref):
        return
    if ":" in ref:
        if refgrammar.is_digest(ref):
            raise RegistryError("DIGEST_INVALID", f"unsupported digest algorithm in {ref[:300]!r}")
        raise RegistryError("DIGEST_INVALID", f"invalid digest {ref[:300]!r}")
    raise RegistryError("TAG_INVALID", f"invalid tag {ref[:300]!r}")


def is_digest(ref: str) -> bool:
    return refgrammar.is_sha256_digest(ref)
