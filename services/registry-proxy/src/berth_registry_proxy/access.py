"""Who may do what in berth's own registry: htpasswd users (bcrypt), the namespaces/teams
permissions file, and the anonymously readable names (BERTH_REGISTRY_PUBLIC globs).

Rules (README, "berth's own registry"): a user reads and writes its own namespace (the first
path component equal to its user name); the permissions file grants `read` or `write` on other
namespaces to users and teams; `write` implies `read` and `delete`; anyone, signed in or not,
reads a name matching a public glob. Everything else is refused: private by default.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

log = logging.getLogger(__name__)
READ = frozenset({"pull"})
WRITE = frozenset({"pull", "push", "delete"})


def _split(raw: str) -> list[str]:
    return [p.strip() for p in raw.split(",") if p.strip()]


@dataclass(frozen=True)
class HostedConfig:
    # host names under which berth's own registry is addressed (the listen address by default)
    addresses: frozenset[str] = frozenset()
    htpasswd: Path | None = None
    permissions: Path | None = None
    public: tuple[str, ...] = ()
    webhooks: tuple[str, ...] = ()
    webhook_attempts: int = 5
    webhook_backoff: float = 1.0  # seconds before the second attempt; doubled each time
    webhook_timeout: float = 10.0
    gc_grace: float = 3600.0  # seconds an unreferenced blob or abandoned upload is kept (a push in progress)
    token_ttl: int = 300
    realm: str = ""  # token URL; "" = http://<the request's Host>/token
    service: str = "berth-registry"
    # where webhook receivers reach berth (callback_url): never the pushing client's Host header
    base_url: str = "http://127.0.0.1:5000"

    @classmethod
    def from_env(cls, listen: str, env: dict[str, str] | None = None) -> HostedConfig:
        e = os.environ if env is None else env
        addresses = _split(e.get("BERTH_REGISTRY_ADDRESS", ""))
        if not addresses:
            _, _, port = listen.rpartition(":")
            addresses = [listen, f"127.0.0.1:{port}", f"localhost:{port}"]
        realm = e.get("BERTH_REGISTRY_TOKEN_REALM", "")
        base_url = realm.rsplit("/token", 1)[0] if realm else f"http://{addresses[0]}"
        htpasswd = e.get("BERTH_REGISTRY_HTPASSWD", "")
        permissions = e.get("BERTH_REGISTRY_PERMISSIONS", "")
        return cls(
            addresses=frozenset(a.lower() for a in addresses),
            htpasswd=Path(htpasswd) if htpasswd else None,
            permissions=Path(permissions) if permissions else None,
            public=tuple(_split(e.get("BERTH_REGISTRY_PUBLIC", ""))),
            webhooks=tuple(_split(e.get("BERTH_REGISTRY_WEBHOOKS", ""))),
            webhook_attempts=int(e.get("BERTH_REGISTRY_WEBHOOK_ATTEMPTS", "5")),
            webhook_backoff=float(e.get("BERTH_REGISTRY_WEBHOOK_BACKOFF", "1")),
            webhook_timeout=float(e.get("BERTH_REGISTRY_WEBHOOK_TIMEOUT", "10")),
            gc_grace=float(e.get("BERTH_REGISTRY_GC_GRACE", "3600")),
            token_ttl=int(e.get("BERTH_REGISTRY_TOKEN_TTL", "300")),
            realm=realm,
            base_url=base_url,
        )


@dataclass
class _Loaded:
    mtime: float = -1.0
    data: dict[str, object] = field(default_factory=dict)


class Access:
    """Users and permissions, re-read when their files change (no restart to add a user)."""

    def __init__(self, config: HostedConfig) -> None:
        self.config = config
        self._users = _Loaded()
        self._perms = _Loaded()
        self._dummy = b""

    # --- files -----------------------------------------------------------------------------------

    def users(self) -> dict[str, bytes]:
        path = self.config.htpasswd
        if path is None:
            return {}
        if self._reload(path, self._users):
            users: dict[str, object] = {}
            for line in path.read_text().splitlines():
                name, sep, hashed = line.strip().partition(":")
                # Only bcrypt ($2y$ is Apache's spelling of $2b$): other schemes are not accepted.
                if sep and hashed.startswith(("$2y$", "$2b$", "$2a$")):
                    users[name] = ("$2b$" + hashed[4:]).encode()
                elif sep:
                    log.warning("htpasswd: user %r has no bcrypt hash; ignored", name)
            self._users.data = users
        return self._users.data  # type: ignore[return-value]

    def _permissions(self) -> dict[str, object]:
        path = self.config.permissions
        if path is None:
            return {}
        if self._reload(path, self._perms):
            try:
                doc = json.loads(path.read_text())
            except ValueError as exc:
                log.error("permissions file %s is not JSON (%s): no grants from it", path, exc)
                doc = {}
            self._perms.data = doc if isinstance(doc, dict) else {}
        return self._perms.data

    @staticmethod
    def _reload(path: Path, loaded: _Loaded) -> bool:
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            loaded.data, loaded.mtime = {}, -1.0
            return False
        if mtime == loaded.mtime:
            return False
        loaded.mtime = mtime
        return True

    # --- checks ----------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Sign-in is asked for (a 401 on /v2/) once the registry has users."""
        return bool(self.users())

    def check_password(self, user: str, password: str) -> bool:
        """bcrypt is slow on purpose: callers run this in a worker thread."""
        hashed = self.users().get(user)
        # An unknown user costs the same as a wrong password (no timing hint of which was wrong).
        if hashed is None:
            self._dummy = self._dummy or bcrypt.hashpw(b"-", bcrypt.gensalt(10))
        probe = hashed or self._dummy
        try:
            ok = bcrypt.checkpw(password.encode(), probe)
        except ValueError:
            ok = False
        return ok and hashed is not None

    def namespaces(self) -> set[str]:
        """Namespaces hosted here: users' own and the permissions file's."""
        ns = self._permissions().get("namespaces")
        return set(self.users()) | (set(ns) if isinstance(ns, dict) else set())

    def is_public(self, repo: str) -> bool:
        return any(fnmatch.fnmatchcase(repo, glob) for glob in self.config.public)

    def actions(self, user: str, repo: str) -> frozenset[str]:
        """What `user` ("" = anonymous) may do on hosted repository `repo`."""
        allowed: set[str] = set(READ) if self.is_public(repo) else set()
        if not user:
            return frozenset(allowed)
        namespace = repo.partition("/")[0]
        if namespace == user:
            return WRITE
        perms = self._permissions()
        teams = perms.get("teams")
        mine = {"*", user} | {f"@{t}" for t, members in (teams.items() if isinstance(teams, dict) else ())
                              if isinstance(members, list) and user in members}
        namespaces = perms.get("namespaces")
        grants = namespaces.get(namespace) if isinstance(namespaces, dict) else None
        if isinstance(grants, dict):
            if mine & set(_names(grants.get("write"))):
                return WRITE
            if mine & set(_names(grants.get("read"))):
                allowed |= READ
        return frozenset(allowed)


def _names(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
