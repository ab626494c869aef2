"""X-Registry-Config: the client's registry credentials for a build's `FROM` pulls.

The docker CLI sends every credential it has, as base64url JSON mapping a registry to an
AuthConfig; the classic builder picks the one for the registry of each image it pulls (moby's
registry.ResolveAuthConfig). They live in memory for the one build, go only as X-Registry-Auth on
the HTTP pull request to lifecycle's URL (never over NATS), and are never logged or traced.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from berth_common.reference import InvalidReference, parse_normalized_named

REGISTRY_CONFIG_HEADER = "X-Registry-Config"
INDEX_SERVER = "https://index.docker.io/v1/"  # Docker Hub's key in a client's config


def _hostname(key: str) -> str:
    """moby's ConvertToHostname: a legacy key (`https://host/v1/`) as `host`."""
    return key.removeprefix("http://").removeprefix("https://").split("/", 1)[0]


class RegistryAuth:
    def __init__(self, configs: dict[str, dict[str, Any]] | None = None) -> None:
        self._configs = configs or {}

    @classmethod
    def from_header(cls, value: str) -> RegistryAuth:
        """A header that does not decode counts as none, as moby ignores it for pulls."""
        if not value:
            return cls()
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            doc = json.loads(raw)
        except (binascii.Error, ValueError):
            return cls()
        if not isinstance(doc, dict):
            return cls()
        return cls({str(k): v for k, v in doc.items() if isinstance(v, dict)})

    def header_for(self, ref: str) -> str:
        """The X-Registry-Auth value for pulling `ref`; "" when the client sent none for it."""
        try:
            domain = parse_normalized_named(ref).domain
        except InvalidReference:
            return ""
        official = domain == "docker.io"
        key = INDEX_SERVER if official else domain
        found = self._configs.get(key)
        if found is None and not official:
            found = next((c for k, c in self._configs.items() if _hostname(k) == domain), None)
        if not found:
            return ""
        return base64.urlsafe_b64encode(json.dumps(found).encode()).decode()

    def __repr__(self) -> str:  # never the secrets, whatever prints this
        return f"RegistryAuth({len(self._configs)} registries)"
