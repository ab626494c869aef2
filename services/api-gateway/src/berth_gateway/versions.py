"""API versions: what the gateway advertises and which path prefixes it accepts.

Every route is served unversioned and under /v{X.Y}; the version check follows moby's
middleware/version.go word for word because clients show its messages to users.
"""

from __future__ import annotations

import platform
import sys

from aiohttp import web
from berth_common.engineversion import ENGINE_VERSION
from berth_contracts.errors import InvalidParameter

# The version a request speaks (its /vX.Y prefix, else API_VERSION); set by app.py.
API_VERSION_KEY = web.RequestKey("berth.api_version", str)

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
__all__ = ["ENGINE_VERSION"]
SERVER_HEADER = f"Docker/{ENGINE_VERSION} (linux)"
GIT_COMMIT = "berth"
# GoVersion is informational; clients print it. We say what really runs the daemon.
RUNTIME_VERSION = (
    f"python{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
)

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def go_arch() -> str:
    """The machine's architecture in Go's (and so Docker's) spelling."""
    machine = platform.machine()
    return _ARCH.get(machine, machine)


def parse(version: str) -> tuple[int, ...]:
    """'1.44' -> (1, 44); a malformed part counts as 0, like moby's versions.compare."""
    parts: list[int] = []
    for piece in version.split("."):
        try:
            parts.append(int(piece))
        except ValueError:
            parts.append(0)
    return tuple(parts)


def compare(a: str, b: str) -> int:
    pa, pb = parse(a), parse(b)
    width = max(len(pa), len(pb))
    pa += (0,) * (width - len(pa))
    pb += (0,) * (width - len(pb))
    return (pa > pb) - (pa < pb)


def check(requested: str | None) -> str:
    """The version a request speaks; raises Docker's 400 for one outside [MIN, MAX]."""
    if not requested:
        return API_VERSION
    if compare(requested, MIN_API_VERSION) < 0:
        raise InvalidParameter(
            f"client version {requested} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    if compare(requested, API_VERSION) > 0:
        raise InvalidParameter(
            f"client version {requested} is too new. Maximum supported API version is {API_VERSION}"
        )
    return requested


def at_least(version: str, minimum: str) -> bool:
    return compare(version, minimum) >= 0
